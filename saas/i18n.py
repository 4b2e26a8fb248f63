"""WTForms' built-in messages in the request's language, for every form of the app.

Flask-WTF translates WTForms' messages ("This field is required.", "Not a valid date value.", ...)
with the catalogs shipped inside WTForms, chosen by Flask-Babel's locale. Two gaps: WTForms ships no
Thai catalog, and gettext resolves "zh_Hant" to WTForms' "zh" catalog, which is simplified Chinese.
So each request hands Flask-WTF a translations object that looks in the project's catalog first
(where _wtforms_messages() below puts these strings) and then in WTForms' own catalog for the right
locale (zh_Hant -> zh_TW). Forms need nothing special: a bare DataRequired() speaks Thai.

Also here: the request's catalog, looked up once per request instead of once per string
(RequestDomain, and the gettext callables templates use), and the date filters of templates.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, tzinfo
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from babel import Locale, dates
from babel.support import NullTranslations, Translations
from flask import Flask, g, request
from flask_babel import Domain, get_locale, get_timezone, get_translations, gettext, ngettext
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from wtforms.i18n import messages_path

from saas.extensions import babel

# Our locale code -> the directory of WTForms' catalog for it.
WTFORMS_LOCALES = {"zh_Hans": "zh", "zh_Hant": "zh_TW"}


@lru_cache(maxsize=16)
def _wtforms_catalog(locale: str) -> NullTranslations:
    return Translations.load(messages_path(), [WTFORMS_LOCALES.get(locale, locale)], domain="wtforms")


class WTFormsTranslations:
    """What Flask-WTF calls: ugettext/ungettext (WTForms does the %-formatting itself)."""

    def _fallback(self) -> NullTranslations:
        return _wtforms_catalog(str(get_locale() or "en"))

    def ugettext(self, string: str) -> str:
        text = request_translations().ugettext(string)
        return text if text != string else self._fallback().ugettext(string)

    def ungettext(self, singular: str, plural: str, n: int) -> str:
        text = request_translations().ungettext(singular, plural, n)
        return text if text not in (singular, plural) else self._fallback().ungettext(singular, plural, n)

    gettext = ugettext
    ngettext = ungettext


TRANSLATIONS = WTFormsTranslations()


def _babel_state() -> SimpleNamespace | None:
    """Flask-Babel's state of this app context (g._flask_babel), if there is one yet."""
    try:
        return getattr(g._get_current_object(), "_flask_babel", None)
    except RuntimeError:  # no app context
        return None


def _remembered(state: SimpleNamespace | None, domain: Domain | None) -> NullTranslations | None:
    # Valid only for the very locale object it was picked for: force_locale() and refresh() put
    # another one in place, so a switched language is never served from here.
    memo = getattr(state, "crm_translations", None)
    if memo is not None and memo[0] is getattr(state, "babel_locale", None) and memo[1] is domain:
        return memo[2]
    return None


class RequestDomain(Domain):
    """Flask-Babel's domain, remembering the catalog it picked on the app context's Babel state.

    Flask-Babel looks the catalog up anew for every string (a dozen context-local lookups and a
    locale-to-text conversion each), and a list page resolves a few hundred strings.
    """

    def get_translations(self) -> NullTranslations:
        found = _remembered(_babel_state(), self)
        if found is not None:
            return found
        translations = super().get_translations()
        state = _babel_state()
        if state is not None and getattr(state, "babel_locale", None) is not None:
            state.crm_translations = (state.babel_locale, self, translations)
        return translations


def request_translations() -> NullTranslations:
    """The catalog of the request's language (what flask_babel.get_translations() returns)."""
    state = _babel_state()
    if state is not None:
        found = _remembered(state, getattr(state, "babel_domain", None))
        if found is not None:
            return found
    return get_translations()


class Resolved(Mapping[str, str]):
    """Lazy labels as text of the current language, each translated on first use only (a list
    showing a stage label per row would otherwise translate it per row)."""

    __slots__ = ("_labels", "_texts")

    def __init__(self, labels: Mapping[str, Any]) -> None:
        self._labels = labels
        self._texts: dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        try:
            return self._texts[key]
        except KeyError:
            text = self._texts[key] = str(self._labels[key])
            return text

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels)

    def __len__(self) -> int:
        return len(self._labels)


# Date filters: Flask-Babel's dateformat / datetimeformat / timeformat, with the same results, but
# reading the request's locale and zone straight from its state rather than through a dozen
# context-local lookups per value (a list shows one date per row).


def _locale_and_zone() -> tuple[Locale | None, tzinfo]:
    state = _babel_state()
    locale = getattr(state, "babel_locale", None)
    zone = getattr(state, "babel_tzinfo", None)
    if locale is None or zone is None:  # first use in this context, or after flask_babel.refresh()
        return get_locale(), get_timezone()
    return locale, zone


def _pattern(kind: str, format: str | None) -> str | None:
    formats = babel.date_formats
    if format is None:
        format = formats[kind]
    if format in ("short", "medium", "full", "long"):
        format = formats[f"{kind}.{format}"] or format
    return format


def format_date(value: date | None = None, format: str | None = None, rebase: bool = True) -> str:
    locale, zone = _locale_and_zone()
    if rebase and isinstance(value, datetime):
        value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        value = zone.normalize(value.astimezone(zone))  # type: ignore[attr-defined]  # a pytz zone
    if value is None:  # today, which must not be remembered
        return dates.format_date(value, _pattern("date", format), locale=locale)
    # Babel formats only the day of a date-time: the day (in the request's zone), pattern and locale
    # are all the result depends on.
    day = value.date() if isinstance(value, datetime) else value
    return _formatted_day(day, _pattern("date", format), locale)


@lru_cache(maxsize=4096)
def _formatted_day(day: date, pattern: str | None, locale: Locale | None) -> str:
    """A day as text (a list shows one per row, mostly the same few days): a pure function, remembered."""
    return dates.format_date(day, pattern, locale=locale)


def format_datetime(value: datetime | None = None, format: str | None = None, rebase: bool = True) -> str:
    locale, zone = _locale_and_zone()
    return dates.format_datetime(
        value, _pattern("datetime", format), tzinfo=zone if rebase else None, locale=locale
    )


def format_time(value: time | datetime | None = None, format: str | None = None, rebase: bool = True) -> str:
    locale, zone = _locale_and_zone()
    return dates.format_time(value, _pattern("time", format), tzinfo=zone if rebase else None, locale=locale)


@pass_context
def _template_gettext(context: Context, string: str, **variables: Any) -> str:
    """What jinja2.ext's newstyle gettext does (autoescape, always %-formatted), calling the catalog directly."""
    text = request_translations().ugettext(string)
    if context.eval_ctx.autoescape:
        text = Markup(text)
    return text % variables


def init_app(app: Flask) -> None:
    babel.domain_instance = RequestDomain(domain=app.config.get("BABEL_DOMAIN", "messages"))
    app.jinja_env.filters.update(
        dateformat=format_date, datetimeformat=format_datetime, timeformat=format_time
    )
    # Flask-Babel's template callables, minus its per-string lookups; still newstyle (autoescaped,
    # %(name)s formatting).
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    # Jinja's newstyle gettext, minus a second context.call per string (a 360 page shows a hundred).
    # Jinja's `_` looks `gettext` up again in the render context on every call, so that a context
    # could override it; none does here, so `_` is `gettext` itself.
    app.jinja_env.globals["gettext"] = app.jinja_env.globals["_"] = _template_gettext

    @app.before_request
    def _wtforms_translations() -> None:
        # flask_wtf.i18n keeps the request's WTForms translations here; setting it first makes it ours.
        request.wtforms_translations = TRANSLATIONS


def _wtforms_messages() -> None:  # pragma: no cover - never called
    """WTForms' user-facing messages, listed so that `pybabel extract` puts them in our catalogs."""
    gettext("This field is required.")
    gettext("Invalid input.")
    gettext("Invalid email address.")
    gettext("Invalid IP address.")
    gettext("Invalid Mac address.")
    gettext("Invalid URL.")
    gettext("Invalid UUID.")
    gettext("Field must be equal to %(other_name)s.")
    ngettext(
        "Field must be at least %(min)d character long.",
        "Field must be at least %(min)d characters long.",
        0,
    )
    ngettext(
        "Field cannot be longer than %(max)d character.",
        "Field cannot be longer than %(max)d characters.",
        0,
    )
    ngettext(
        "Field must be exactly %(max)d character long.",
        "Field must be exactly %(max)d characters long.",
        0,
    )
    gettext("Field must be between %(min)d and %(max)d characters long.")
    gettext("Number must be at least %(min)s.")
    gettext("Number must be at most %(max)s.")
    gettext("Number must be between %(min)s and %(max)s.")
    gettext("Date must be at least %(min)s.")
    gettext("Date must be at most %(max)s.")
    gettext("Date must be between %(min)s and %(max)s.")
    gettext("Invalid value, must be one of: %(values)s.")
    gettext("Invalid value, can't be any of: %(values)s.")
    gettext("This field cannot be edited.")
    gettext("This field is disabled and cannot have a value.")
    gettext("Invalid CSRF Token.")
    gettext("CSRF token missing.")
    gettext("CSRF failed.")
    gettext("CSRF token expired.")
    gettext("Invalid Choice: could not coerce.")
    gettext("Not a valid choice.")
    gettext("Invalid choice(s): one or more data inputs could not be coerced.")
    ngettext(
        "'%(value)s' is not a valid choice for this field.",
        "'%(value)s' are not valid choices for this field.",
        0,
    )
    gettext("Not a valid datetime value.")
    gettext("Not a valid date value.")
    gettext("Not a valid time value.")
    gettext("Not a valid week value.")
    gettext("Not a valid integer value.")
    gettext("Not a valid decimal value.")
    gettext("Not a valid float value.")


def request_locale() -> str:
    """The language the person is using now (for a new account's preference), "en" outside a request."""
    from flask import current_app, has_request_context

    if not has_request_context():
        return "en"
    code = str(get_locale() or "en")
    return code if code in current_app.config["LANGUAGES"] else "en"
