"""A small allow-list HTML sanitiser for formatted notes (standard library only).

Everything not on the list goes: unknown tags are dropped (their text kept,
escaped), dangerous containers (script, style, iframe, ...) are dropped with
their content, every attribute goes except a link's href, and that only with
an http, https or mailto address. Text is always re-escaped, tags are balanced,
so the output is safe to insert into a page as it is.
"""

from __future__ import annotations

import re
from html import escape, unescape
from html.parser import HTMLParser

ALLOWED = {
    "p", "br", "b", "strong", "i", "em", "u", "s", "ul", "ol", "li",
    "blockquote", "a", "h3", "h4", "code", "pre", "hr",
}  # fmt: skip
VOID = {"br", "hr"}
SELF_CLOSING = {"li", "p"}
# Dropped together with everything inside them.
DROP_CONTENT = {
    "script", "style", "iframe", "object", "embed", "template", "noscript", "textarea",
    "select", "svg", "math", "head", "title", "frameset", "frame", "applet", "noembed", "xmp",
}  # fmt: skip
# Rewritten to an allowed tag of the same meaning.
ALIASES = {"h1": "h3", "h2": "h3", "h5": "h4", "h6": "h4", "div": "p", "strike": "s", "del": "s", "ins": "u"}
SAFE_HREF = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
MAX_INPUT = 100_000


class _Sanitiser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[str] = []
        self.dropping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.dropping:
            if tag == self.dropping[-1] or tag in DROP_CONTENT:
                self.dropping.append(tag)
            return
        if tag in DROP_CONTENT:
            self.dropping.append(tag)
            return
        tag = ALIASES.get(tag, tag)
        if tag not in ALLOWED:
            return
        if tag in SELF_CLOSING and self.stack and self.stack[-1] == tag:
            self.handle_endtag(tag)  # <li>one<li>two: the second item closes the first
        if tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), "")
            href = "".join(ch for ch in href if ch > " ")  # no tabs/newlines hiding "java\nscript:"
            if SAFE_HREF.match(href):
                self.out.append(f'<a href="{escape(href, quote=True)}" rel="nofollow noopener noreferrer">')
            else:
                self.out.append("<a>")
        else:
            self.out.append(f"<{tag}>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        tag = ALIASES.get(tag, tag)
        if not self.dropping and tag in ALLOWED and tag not in VOID and self.stack and self.stack[-1] == tag:
            self.handle_endtag(tag)
        elif self.dropping and self.dropping[-1] == tag:
            self.dropping.pop()

    def handle_endtag(self, tag: str) -> None:
        if self.dropping:
            if tag == self.dropping[-1]:
                self.dropping.pop()
            return
        tag = ALIASES.get(tag, tag)
        if tag not in ALLOWED or tag in VOID or tag not in self.stack:
            return
        while self.stack:  # close whatever was left open inside it
            open_tag = self.stack.pop()
            self.out.append(f"</{open_tag}>")
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.out.append(escape(data, quote=False))

    def handle_comment(self, data: str) -> None:
        pass

    def handle_decl(self, decl: str) -> None:
        pass

    def handle_pi(self, data: str) -> None:
        pass

    def unknown_decl(self, data: str) -> None:
        pass

    def result(self) -> str:
        self.close()
        while self.stack:
            self.out.append(f"</{self.stack.pop()}>")
        return "".join(self.out)


def sanitize_html(html: str | None) -> str:
    """The allowed part of `html`, safe to show as markup."""
    if not html:
        return ""
    parser = _Sanitiser()
    parser.feed(html[:MAX_INPUT])
    return parser.result().strip()


def plain_text(html: str | None) -> str:
    """The text of sanitised HTML (for previews and exports)."""
    text = re.sub(r"<(br|/p|/li|/h[34]|/blockquote|/pre)>", "\n", html or "")
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"\n{3,}", "\n\n", unescape(text)).strip()
