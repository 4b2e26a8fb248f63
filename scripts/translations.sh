#!/usr/bin/env bash
# Refresh the translation catalogs: extract every wrapped string, merge it into each language's
# catalog, and compile the .mo files the app loads (they are kept in git).
#
#   scripts/translations.sh            extract + update + compile
#   scripts/translations.sh compile    compile only (after editing a .po file)
#   scripts/translations.sh check      fail if the code has strings the catalogs lack, or a
#                                      catalog has an empty or fuzzy translation
#
# New strings arrive in the .po files with an empty msgstr (or marked fuzzy when Babel guessed
# one from a similar string): translate them, then run this again (or with "compile").
set -euo pipefail

cd "$(dirname "$0")/.."
DIR=saas/translations
POT=$DIR/messages.pot
LOCALES=(zh_Hans zh_Hant th)
# Babel's defaults (_, gettext, ngettext, pgettext, N_, ...) plus Flask-Babel's lazy forms.
KEYWORDS=(-k _l -k lazy_gettext -k lazy_pgettext:1c,2 -k lazy_ngettext:1,2)

if [[ -n "${PYBABEL:-}" ]]; then
  pybabel=("$PYBABEL")
elif [[ -x .venv/bin/pybabel ]]; then
  pybabel=(.venv/bin/pybabel)
else
  pybabel=(pybabel)
fi

extract() {
  local tmp
  tmp=$(mktemp)
  "${pybabel[@]}" -q extract -F babel.cfg "${KEYWORDS[@]}" \
    --sort-by-file --no-wrap \
    --project=crm --version=0.1 --copyright-holder="CRM contributors" \
    -o "$tmp" .
  # Keep the old template when only its creation date would change: no churn in git.
  if [[ -f $POT ]] && diff -q <(grep -v '^"POT-Creation-Date:' "$POT") <(grep -v '^"POT-Creation-Date:' "$tmp") >/dev/null; then
    rm -f "$tmp"
  else
    mv "$tmp" "$POT"
  fi
}

update() {
  for loc in "${LOCALES[@]}"; do
    "${pybabel[@]}" -q update --init-missing --ignore-obsolete --no-wrap -i "$POT" -d "$DIR" -l "$loc"
  done
}

compile() {
  # --statistics prints how much of each catalog is translated; untranslated strings show in English.
  "${pybabel[@]}" compile --statistics -d "$DIR"
}

check() {
  local tmp
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' RETURN
  "${pybabel[@]}" -q extract -F babel.cfg "${KEYWORDS[@]}" --omit-header -o "$tmp" .
  local py=python3
  [[ -x .venv/bin/python ]] && py=.venv/bin/python
  "$py" - "$tmp" "$DIR" "${LOCALES[@]}" <<'PY'
import sys
from babel.messages.pofile import read_po

pot, folder, *locales = sys.argv[1:]
with open(pot, "rb") as f:
    wanted = {(m.context, m.id) for m in read_po(f) if m.id}
problems = 0
for loc in locales:
    with open(f"{folder}/{loc}/LC_MESSAGES/messages.po", "rb") as f:
        cat = read_po(f)
    for context, msgid in sorted(wanted, key=str):
        m = cat.get(msgid, context=context)
        strings = (m.string if isinstance(m.string, tuple) else (m.string,)) if m is not None else ()
        state = "missing" if m is None else "fuzzy" if m.fuzzy else "untranslated" if not all(strings) else ""
        if state:
            problems += 1
            print(f"{loc}: {state}: {(context + ' | ') if context else ''}{msgid!r}")
print(f"{problems} problem(s)" if problems else "catalogs complete")
sys.exit(1 if problems else 0)
PY
}

case "${1:-all}" in
  all) extract; update; compile ;;
  extract) extract ;;
  update) update ;;
  compile) compile ;;
  check) check ;;
  *) echo "usage: $0 [all|extract|update|compile|check]" >&2; exit 2 ;;
esac
