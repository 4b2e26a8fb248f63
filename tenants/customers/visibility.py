"""Record visibility (own / team / all), applied in the query: the one rule every list and page uses.

- all: every record of the workspace.
- team: records the viewer owns, or that a member of one of the viewer's teams owns.
- own: records the viewer owns.
Anything else (an unknown setting) is treated as "own": when in doubt, show less.
Records without an owner are seen by "all" roles only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from tenants.customers.models import Company, Contact, TeamMember
from tenants.customers.people import Viewer


def owned_by_visible(viewer: Viewer, owner_col: Any) -> ColumnElement:
    """A WHERE clause on an owner column for what this viewer may see."""
    if viewer.visibility == "all":
        return true()
    if viewer.visibility == "team":
        my_teams = select(TeamMember.team_id).where(TeamMember.user_id == viewer.user_id)
        mates = select(TeamMember.user_id).where(TeamMember.team_id.in_(my_teams))
        return or_(owner_col == viewer.user_id, owner_col.in_(mates))
    return owner_col == viewer.user_id


def visible(viewer: Viewer, model: type[Company] | type[Contact]) -> ColumnElement:
    """The clause for companies or contacts this viewer may see."""
    return owned_by_visible(viewer, model.owner_id)
