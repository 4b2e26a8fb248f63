"""WTForms' built-in messages in the request's language, for every form of the app.

Flask-WTF translates WTForms' messages ("This field is required.", "Not a valid date value.", ...)
with the catalogs shipped inside WTForms, chosen by Flask-Babel's locale. Two gaps: WTForms ships no
Thai catalog, and gettext resolves "zh_Hant" to WTForms' "zh" catalog, which is simplified Chinese.
So each request hands Flask-WTF a translations object that looks in the project's catalog first
(where _wtforms_messages() below puts these strings) and then in WTForms' own catalog for the right
locale (zh_Hant -> zh_TW). Forms need nothing special: a bare DataRequired() speaks Thai.
"""

from __future__ import annotations

from functools import lru_cache

from babel.support import NullTranslations, Translations
from flask import Flask, request
from flask_babel import get_locale, get_translations, gettext, ngettext
from wtforms.i18n import messages_path

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
        text = get_translations().ugettext(string)
        return text if text != string else self._fallback().ugettext(string)

    def ungettext(self, singular: str, plural: str, n: int) -> str:
        text = get_translations().ungettext(singular, plural, n)
        return text if text not in (singular, plural) else self._fallback().ungettext(singular, plural, n)

    gettext = ugettext
    ngettext = ungettext


TRANSLATIONS = WTFormsTranslations()


def init_app(app: Flask) -> None:
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
