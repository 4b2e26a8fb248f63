"""Teams: groups of colleagues. A role with "team" visibility sees what its teammates own."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import delete, select

from saas.extensions import db
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.models import Team, TeamMember
from tenants.customers.people import is_active_member, names


def teams() -> list[tuple[Team, list[tuple[int, str]]]]:
    """Every team with its members (user id, name)."""
    all_teams = list(db.session.scalars(select(Team).order_by(Team.name)))
    links = list(db.session.execute(select(TeamMember.team_id, TeamMember.user_id)))
    who = names(uid for _tid, uid in links)
    by_team: dict[int, list[tuple[int, str]]] = {}
    for team_id, user_id in links:
        by_team.setdefault(team_id, []).append((user_id, who.get(user_id, f"#{user_id}")))
    return [(t, sorted(by_team.get(t.id, []), key=lambda m: m[1].lower())) for t in all_teams]


def get_team(team_id: int) -> Team:
    team = db.session.get(Team, team_id)
    if team is None:
        raise NotFound(team_id)
    return team


def _name(name: str, team_id: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise CustomerError(_("Give the team a name."), "name")
    if len(name) > 80:
        raise CustomerError(_("The name can be at most 80 characters long."), "name")
    clash = db.session.scalar(select(Team.id).where(Team.name == name, Team.id != (team_id or 0)))
    if clash:
        raise CustomerError(_("There is a team of that name already."), "name")
    return name


def create_team(name: str) -> Team:
    team = Team(name=_name(name))
    db.session.add(team)
    db.session.commit()
    return team


def rename_team(team_id: int, name: str) -> Team:
    team = get_team(team_id)
    team.name = _name(name, team.id)
    db.session.commit()
    return team


def delete_team(team_id: int) -> None:
    team = get_team(team_id)
    db.session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    db.session.delete(team)
    db.session.commit()


def add_member(team_id: int, user_id: int) -> None:
    team = get_team(team_id)
    if not is_active_member(user_id):
        raise CustomerError(_("Choose someone from the list."), "user_id")
    if db.session.get(TeamMember, (team.id, user_id)) is None:
        db.session.add(TeamMember(team_id=team.id, user_id=user_id))
        db.session.commit()


def remove_member(team_id: int, user_id: int) -> None:
    team = get_team(team_id)
    link = db.session.get(TeamMember, (team.id, user_id))
    if link is None:
        raise CustomerError(_("That person is not in this team."), "user_id")
    db.session.delete(link)
    db.session.commit()
