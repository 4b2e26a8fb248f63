"""Fill empty or fuzzy catalog entries from JSON files of translations, then leave compiling to
scripts/translations.sh.

    python scripts/i18n_fill.py a.json [b.json ...]

Each JSON file maps a msgid (or "context|msgid") to {"zh_Hans": ..., "zh_Hant": ..., "th": ...};
a plural message gives a list per language (one string per plural form). Only entries that are
empty or fuzzy are written, so a translation already reviewed in a .po file is never overwritten.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ("zh_Hans", "zh_Hant", "th")


def main(paths: list[str]) -> int:
    wanted: dict[tuple[str | None, str], dict] = {}
    for path in paths:
        for key, langs in json.loads(Path(path).read_text(encoding="utf-8")).items():
            context, _, msgid = key.rpartition("|") if "|" in key else (None, "", key)
            wanted[(context or None, msgid)] = langs
    filled = 0
    for loc in LOCALES:
        po = ROOT / "saas" / "translations" / loc / "LC_MESSAGES" / "messages.po"
        with po.open("rb") as f:
            catalog = read_po(f, locale=loc)
        for message in catalog:
            if not message.id:
                continue
            msgid = message.id[0] if isinstance(message.id, tuple) else message.id
            langs = wanted.get((message.context, msgid))
            if not langs or loc not in langs:
                continue
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if all(strings) and not message.fuzzy:
                continue
            value = langs[loc]
            if isinstance(message.id, tuple):
                value = tuple(value) if isinstance(value, list) else (value,) * catalog.num_plurals
            message.string = value
            message.flags.discard("fuzzy")
            filled += 1
        with po.open("wb") as f:
            write_po(f, catalog, width=0, ignore_obsolete=True)
    print(f"filled {filled} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
