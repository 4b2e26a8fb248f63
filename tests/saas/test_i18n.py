"""Translations: complete catalogs for 简体中文, 繁體中文 and ไทย, and pages that really switch language.

The catalog tests read the files only (no database): every msgid of messages.pot is translated,
not fuzzy, with the same placeholders, in each catalog; the compiled .mo files match the .po files;
and no wrapped string of the code is missing from the catalogs (run `make translations` and translate
what it adds). The page tests switch language through POST /lang/<code>, as the menu does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.factories import PASSWORD, field_errors, sql_value, unique

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "saas" / "translations"
LOCALES = ("zh_Hans", "zh_Hant", "th")
# %(name)s, %(n)d, ... and bare %s / %d; "%%" is a literal percent sign.
PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifgGeExXroc]")

# A few strings each page must show, per language (taken from the catalogs, checked by eye).
EXPECT = {
    "zh_Hans": {
        "html_lang": "zh-Hans",
        "landing": "开始 14 天免费试用",
        "signup": "创建您的工作区",
        "login": "忘记密码？",
        "dashboard": "快速上手",
        "welcome": "欢迎，",
        "required": "此项为必填项。",
        "bad_email": "邮箱地址无效。",
        "label": "仅本人的记录",
        "signin_event": "登录",
        "workspace_event": "创建了工作区",
        "login_needed": "请先登录再查看此页面。",
        "verify_subject": "请确认您的邮箱地址",
        "verify_body": "请打开以下链接，确认您的邮箱地址：",
    },
    "zh_Hant": {
        "html_lang": "zh-Hant",
        "landing": "開始 14 天免費試用",
        "signup": "建立您的工作區",
        "login": "忘記密碼？",
        "dashboard": "快速上手",
        "welcome": "歡迎，",
        "required": "此欄位為必填。",
        "bad_email": "電子郵件地址無效。",
        "label": "僅限本人的紀錄",
        "signin_event": "登入",
        "workspace_event": "建立了工作區",
        "login_needed": "請先登入再檢視此頁面。",
        "verify_subject": "請確認您的電子郵件地址",
        "verify_body": "請開啟以下連結，確認您的電子郵件地址：",
    },
    "th": {
        "html_lang": "th",
        "landing": "เริ่มทดลองใช้ฟรี 14 วัน",
        "signup": "สร้างพื้นที่ทำงานของคุณ",
        "login": "ลืมรหัสผ่าน?",
        "dashboard": "เริ่มต้นใช้งาน",
        "welcome": "ยินดีต้อนรับ คุณ ",
        "required": "กรุณากรอกช่องนี้",
        "bad_email": "ที่อยู่อีเมลไม่ถูกต้อง",
        "label": "เฉพาะข้อมูลของตนเอง",
        "signin_event": "เข้าสู่ระบบ",
        "workspace_event": "สร้างพื้นที่ทำงาน",
        "login_needed": "กรุณาเข้าสู่ระบบเพื่อดูหน้านี้",
        "verify_subject": "ยืนยันที่อยู่อีเมลของคุณ",
        "verify_body": "กรุณายืนยันที่อยู่อีเมลของคุณโดยเปิดลิงก์นี้:",
    },
}
ENGLISH = {"landing": "Start your free 14-day trial", "dashboard": "Get started"}


# Catalogs ---------------------------------------------------------------------------------------


def _read_po(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f)


def _po(locale: str) -> Catalog:
    return _read_po(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po")


def _messages(catalog: Catalog) -> Iterator[Message]:
    return (m for m in catalog if m.id)


def _strings(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def _placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text.replace("%%", "")))


def _formats(text: str, like: str) -> None:
    """The translation formats with the values the English takes (no stray or mistyped %)."""
    values = {name: 1 for name in re.findall(r"%\((\w+)\)", like)}
    if values:
        text % values  # noqa: B018 - raises on a broken placeholder
    elif _placeholders(like):
        text % tuple(1 for _ in _placeholders(like))  # noqa: B018


def test_template_has_the_platform_strings():
    msgids = {m.id for m in _messages(_read_po(TRANSLATIONS / "messages.pot"))}
    assert len(msgids) > 200
    assert {
        "Sign in",
        "Audit log",
        "This field is required.",
        "Failed sign-in",
        "Their own records",
    } <= msgids


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_translates_every_msgid_with_the_same_placeholders(locale):
    pot = _read_po(TRANSLATIONS / "messages.pot")
    po = _po(locale)
    assert str(po.locale) == locale
    problems = []
    for tmpl in _messages(pot):
        msg = po.get(tmpl.id, context=tmpl.context)
        where = f"{tmpl.context + ' | ' if tmpl.context else ''}{tmpl.id!r}"
        if msg is None:
            problems.append(f"missing: {where}")
            continue
        if msg.fuzzy:
            problems.append(f"fuzzy: {where}")
        english = _strings(tmpl.id)
        for text in _strings(msg.string):
            if not text.strip():
                problems.append(f"empty: {where}")
                continue
            # Every plural form of Chinese and Thai (one form) stands for the plural English text.
            like = english[-1]
            if _placeholders(text) != _placeholders(like):
                problems.append(f"placeholders {_placeholders(text)} != {_placeholders(like)}: {where}")
                continue
            try:
                _formats(text, like)
            except (KeyError, ValueError, TypeError) as exc:
                problems.append(f"does not format ({exc!r}): {where}")
    assert not problems, f"{locale}: {len(problems)} problem(s):\n" + "\n".join(problems)


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_matches_po(locale):
    """The .mo files are kept in git: they must be compiled from the current .po files."""
    folder = TRANSLATIONS / locale / "LC_MESSAGES"
    with (folder / "messages.mo").open("rb") as f:
        # Babel's read_mo leaves a msgctxt as bytes, and plural ids and strings as lists.
        compiled = {
            (m.context.decode() if isinstance(m.context, bytes) else m.context, _strings(m.id)): _strings(
                m.string
            )
            for m in read_mo(f)
        }
    stale = []
    for msg in _messages(_po(locale)):
        if msg.fuzzy or not all(_strings(msg.string)):
            continue
        if compiled.get((msg.context, _strings(msg.id))) != _strings(msg.string):
            stale.append(msg.id)
    assert not stale, f"{locale}: messages.mo is older than messages.po, run `make translations`: {stale[:5]}"


def _extract_from_code() -> set[tuple[str | None, str]]:
    """What scripts/translations.sh (pybabel extract -F babel.cfg -k _l -k lazy_gettext ...) finds now."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {
        **DEFAULT_KEYWORDS,
        "_l": None,
        "lazy_gettext": None,
        "lazy_pgettext": ((1, "c"), 2),
        "lazy_ngettext": (1, 2),
    }
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add((context, message[0] if isinstance(message, tuple) else message))
    return found


def test_every_wrapped_string_of_the_code_is_translated():
    """A string wrapped in the code but missing from a catalog would show in English."""
    found = _extract_from_code()
    assert {("menu", "Admin"), ("role", "Owner"), (None, "Sign in")} <= found
    for locale in LOCALES:
        po = _po(locale)
        missing = sorted(
            (msgid for context, msgid in found if not _translated(po, msgid, context)),
            key=str,
        )
        assert not missing, (
            f"{locale}: {len(missing)} wrapped string(s) have no translation; run `make translations` "
            f"(scripts/translations.sh) and translate them in saas/translations/*/LC_MESSAGES/messages.po: "
            f"{missing[:10]}"
        )


def _translated(po: Catalog, msgid: str, context: str | None) -> bool:
    msg = po.get(msgid, context=context)
    return msg is not None and not msg.fuzzy and all(s.strip() for s in _strings(msg.string))


def test_babel_finds_the_catalogs_in_the_locale_directories(app):
    """Locale codes "zh_Hans"/"zh_Hant" parse as script variants and gettext finds the directories of those names."""
    from babel import Locale
    from flask_babel import force_locale, gettext

    assert Locale.parse("zh_Hant").script == "Hant"
    with app.test_request_context("/"):
        for locale, expected in (
            ("zh_Hans", "登录"),
            ("zh_Hant", "登入"),
            ("th", "เข้าสู่ระบบ"),
            ("en", "Sign in"),
        ):
            with force_locale(locale):
                assert gettext("Sign in") == expected


def test_the_remembered_catalog_follows_every_language_switch_within_a_request(app):
    """The request's catalog is looked up once (saas.i18n), yet force_locale (reminder mails) and a
    refresh after the language changed still switch it: in code, in lazy strings and in templates."""
    from flask import render_template_string, session
    from flask_babel import force_locale, gettext, lazy_gettext, refresh

    lazy = lazy_gettext("Sign in")
    page = '{{ _("Sign in") }}|{{ gettext("Sign in") }}|{{ _("%(n)s%%", n=5) }}'
    with app.test_request_context("/"):
        assert (gettext("Sign in"), str(lazy)) == ("Sign in", "Sign in")
        for locale, expected in (
            ("th", "เข้าสู่ระบบ"),
            ("zh_Hant", "登入"),
            ("th", "เข้าสู่ระบบ"),
            ("en", "Sign in"),
        ):
            with force_locale(locale):
                assert (gettext("Sign in"), str(lazy)) == (expected, expected)
                assert render_template_string(page) == f"{expected}|{expected}|5%"
        assert gettext("Sign in") == "Sign in"
        session["lang"] = "zh_Hans"
        refresh()
        shown = (gettext("Sign in"), str(lazy), render_template_string(page))
        assert shown == ("登录", "登录", "登录|登录|5%")


@pytest.mark.parametrize("locale", [*LOCALES, "en"])
def test_date_filters_give_flask_babels_results(app, locale):
    """The templates' dateformat / datetimeformat / timeformat (saas.i18n) read the request's locale and
    zone once, and write exactly what Flask-Babel's own filters write."""
    from datetime import UTC, date, datetime
    from types import SimpleNamespace

    import flask_babel
    from flask import g

    from saas import i18n

    assert app.jinja_env.filters["dateformat"] is i18n.format_date
    filters = {
        "EEE d MMM y": (i18n.format_date, flask_babel.format_date),
        "y-MM-dd HH:mm zzz": (i18n.format_datetime, flask_babel.format_datetime),
        "HH:mm:ss": (i18n.format_time, flask_babel.format_time),
    }
    moments = [
        datetime(2024, 3, 10, 23, 30, tzinfo=UTC),
        datetime(2024, 7, 1, 2, 5),
        datetime(2023, 12, 31, 17),
    ]
    leap_day = date(2024, 2, 29)
    for zone in ("UTC", "Asia/Bangkok", "America/Los_Angeles"):
        with app.test_request_context("/"), flask_babel.force_locale(locale):
            # The workspace's zone, where saas.select_timezone reads it.
            g.tenant = SimpleNamespace(timezone=zone)
            for pattern, (ours, theirs) in filters.items():
                for fmt in (None, "short", "medium", "long", "full", pattern):
                    for moment in moments:
                        for rebase in (True, False):
                            assert ours(moment, fmt, rebase) == theirs(moment, fmt, rebase), (zone, fmt)
            for fmt in (None, "short", "long", "EEE d MMM y"):
                assert i18n.format_date(leap_day, fmt) == flask_babel.format_date(leap_day, fmt)


# Pages ------------------------------------------------------------------------------------------


def _html_lang(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html).group(1)


def _switch(client, code: str, next_url: str = "/") -> None:
    resp = client.form(f"/lang/{code}", {"next": next_url})
    assert resp.status_code == 302 and resp.headers["Location"] == next_url


@pytest.mark.parametrize("locale", LOCALES)
def test_language_switch_translates_the_public_pages(client, locale):
    expect = EXPECT[locale]
    _switch(client, locale)
    for path, key in (("/", "landing"), ("/signup", "signup"), ("/login", "login")):
        html = client.get(path).get_data(as_text=True)
        assert _html_lang(html) == expect["html_lang"], path
        assert expect[key] in html, path
    landing = client.get("/").get_data(as_text=True)
    assert ENGLISH["landing"] not in landing
    # The menu shows the chosen language by its own name, and offers the other three.
    assert {"English", "简体中文", "繁體中文", "ไทย"} <= set(
        re.findall(r'lang="[^"]+">([^<]+)</button>', landing)
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_language_switch_translates_the_dashboard_and_sticks_to_the_account(
    app, factory, make_client, locale
):
    expect = EXPECT[locale]
    tenant = factory.tenant()
    client = make_client()
    client.sign_in(tenant.owner_email)
    _switch(client, locale, f"/{tenant.slug}/")
    html = client.get(f"/{tenant.slug}/").get_data(as_text=True)
    assert _html_lang(html) == expect["html_lang"]
    assert expect["dashboard"] in html and expect["welcome"] + "Olivia Owner" in html
    assert ENGLISH["dashboard"] not in html
    # Chosen while signed in, the language is the account's: a new session starts in it.
    assert sql_value(app, "select locale from public.users where email = :e", e=tenant.owner_email) == locale
    other = make_client()
    other.sign_in(tenant.owner_email)
    assert _html_lang(other.get(f"/{tenant.slug}/").get_data(as_text=True)) == expect["html_lang"]


@pytest.mark.parametrize("code", ["xx", "zh", "zh_CN", "EN", "th-TH"])
def test_unknown_language_is_404_and_changes_nothing(client, code):
    assert client.form(f"/lang/{code}", {"next": "/"}).status_code == 404
    assert _html_lang(client.get("/").get_data(as_text=True)) == "en"


def test_language_switch_needs_csrf(client):
    assert client.post("/lang/th", data={"next": "/"}).status_code == 400


def test_language_switch_never_redirects_off_site(client):
    for target in ("https://evil.example/", "//evil.example/"):
        resp = client.form("/lang/th", {"next": target})
        assert resp.status_code == 302 and resp.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("header", "html_lang", "text"),
    [
        ("zh-TW,zh;q=0.9,en;q=0.5", "zh-Hant", EXPECT["zh_Hant"]["landing"]),
        ("zh-HK", "zh-Hant", EXPECT["zh_Hant"]["landing"]),
        ("zh-CN,zh;q=0.9", "zh-Hans", EXPECT["zh_Hans"]["landing"]),
        ("th-TH,th;q=0.9", "th", EXPECT["th"]["landing"]),
        ("fr-FR,fr;q=0.9", "en", ENGLISH["landing"]),
    ],
)
def test_accept_language_picks_the_language_when_none_is_chosen(client, header, html_lang, text):
    html = client.get("/", headers={"Accept-Language": header}).get_data(as_text=True)
    assert _html_lang(html) == html_lang and text in html


def test_sign_up_keeps_the_browsers_language_as_the_accounts(app, client):
    """Nothing chosen, a Thai browser: the new account is Thai, so the workspace stays Thai after sign-up."""
    thai = {"Accept-Language": "th-TH,th;q=0.9"}
    slug = unique("th")
    email = f"{slug}@example.com"
    client.csrf_token()
    data = {"company": "บริษัท ทดสอบ", "slug": slug, "name": "Somchai", "email": email, "password": PASSWORD}
    resp = client.form("/signup", data, headers=thai)
    assert resp.status_code == 302
    assert sql_value(app, "select locale from public.users where email = :e", e=email) == "th"
    # Signed in, the account's language is used even without the header.
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert _html_lang(html) == "th" and EXPECT["th"]["dashboard"] in html


def test_a_chosen_language_wins_over_accept_language(client):
    _switch(client, "en")
    html = client.get("/", headers={"Accept-Language": "zh-TW"}).get_data(as_text=True)
    assert _html_lang(html) == "en" and ENGLISH["landing"] in html


@pytest.mark.parametrize("locale", LOCALES)
def test_form_errors_are_translated(client, locale):
    """WTForms ships no Thai, and its "zh" catalog is simplified: the forms' messages come from ours."""
    expect = EXPECT[locale]
    _switch(client, locale, "/signup")
    resp = client.form("/signup", {"company": "", "slug": unique("s"), "name": "A", "email": "nope"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert field_errors(html, "company") == [expect["required"]]
    assert field_errors(html, "email") == [expect["bad_email"]]
    assert field_errors(html, "password") == [expect["required"]]
    assert "This field is required." not in html


WTFORMS_EXPECT = {
    # locale: (DataRequired, DateField, IntegerField, Length(max=3) default plural message)
    "zh_Hans": ("此项为必填项。", "日期无效。", "请输入整数。", "不能超过 3 个字符。"),
    "zh_Hant": ("此欄位為必填。", "日期無效。", "請輸入整數。", "不能超過 3 個字元。"),
    "th": ("กรุณากรอกช่องนี้", "วันที่ไม่ถูกต้อง", "กรุณากรอกจำนวนเต็ม", "ต้องไม่เกิน 3 ตัวอักษร"),
    "en": (
        "This field is required.",
        "Not a valid date value.",
        "Not a valid integer value.",
        "Field cannot be longer than 3 characters.",
    ),
}


@pytest.mark.parametrize("locale", [*LOCALES, "en"])
def test_wtforms_own_messages_follow_the_language_in_any_form(app, locale):
    """A form with bare WTForms validators and fields (no message=) still speaks the request's language."""
    from flask_babel import force_locale
    from flask_wtf import FlaskForm
    from wtforms import DateField, IntegerField, StringField
    from wtforms.validators import DataRequired, Length

    class Probe(FlaskForm):
        class Meta:
            csrf = False

        name = StringField(validators=[DataRequired()])
        day = DateField()
        count = IntegerField()
        code = StringField(validators=[Length(max=3)])

    data = {"name": "", "day": "31/31/2024", "count": "many", "code": "toolong"}
    with app.test_request_context("/", method="POST", data=data), force_locale(locale):
        app.preprocess_request()
        form = Probe()
        assert not form.validate()
        errors = (form.name.errors[0], form.day.errors[0], form.count.errors[0], form.code.errors[0])
    assert tuple(str(e) for e in errors) == WTFORMS_EXPECT[locale]


@pytest.mark.parametrize("locale", LOCALES)
def test_sign_in_required_message_is_translated(client, locale):
    _switch(client, locale)
    resp = client.get("/workspaces", follow_redirects=True)
    assert EXPECT[locale]["login_needed"] in resp.get_data(as_text=True)


@pytest.mark.parametrize("locale", LOCALES)
def test_audit_log_and_roles_show_words_not_codes(factory, make_client, locale):
    expect = EXPECT[locale]
    tenant = factory.tenant()
    client = make_client()
    client.sign_in(tenant.owner_email)
    _switch(client, locale, f"/{tenant.slug}/admin/audit")
    html = client.get(f"/{tenant.slug}/admin/audit").get_data(as_text=True)
    assert _html_lang(html) == expect["html_lang"]
    badges = re.findall(r'<span class="badge text-bg-light" title="([^"]+)">([^<]+)</span>', html)
    assert ("signin", expect["signin_event"]) in badges
    assert ("workspace_created", expect["workspace_event"]) in badges
    # The action filter keeps the code as the value and shows the word.
    assert f'<option value="signin" >{expect["signin_event"]}</option>' in html
    roles = client.get(f"/{tenant.slug}/admin/roles").get_data(as_text=True)
    assert expect["label"] in roles


@pytest.mark.parametrize("locale", LOCALES)
def test_verification_mail_is_in_the_language_of_the_sign_up(app, client, locale):
    expect = EXPECT[locale]
    _switch(client, locale, "/signup")
    slug = unique("i18n")
    email = f"{slug}@example.com"
    data = {"company": "Acme", "slug": slug, "name": "Ann", "email": email, "password": PASSWORD}
    assert client.form("/signup", data).status_code == 302
    subject = sql_value(app, "select subject from public.email_outbox where to_addr = :e", e=email)
    body = sql_value(app, "select body_text from public.email_outbox where to_addr = :e", e=email)
    assert subject == expect["verify_subject"]
    assert expect["verify_body"] in body
