"""Languages of the public pages: 日本語 and English from the message table, others from gettext.

One catalogue, two kinds of language:

* **ja and en** are written by developers in :data:`config.messages.MESSAGES`, next to the code
  that uses them, reviewed with it and asserted exactly by the tests (``text(key, **kw)``);
* **every other language** is a translation kept by translators in a standard gettext catalogue
  (``config/locale/<locale>/LC_MESSAGES/messages.po``; Poedit, Weblate, Babel all read it). The
  first is やさしい日本語 (easy Japanese, for residents still learning Japanese, children and
  everyone in an emergency), locale ``ja@easy``: Babel parses it (a POSIX modifier, like
  ``sr@latin``); BCP 47 has no tag for it, so pages say ``lang="ja"``.

Each entry is keyed by the message key (``msgctxt``) and the Japanese source (``msgid``): when a
developer changes the Japanese, ``update`` marks the translation fuzzy, and a fuzzy or missing
translation falls back to the Japanese (never to nothing). Only what residents read is offered
for translation (:data:`PUBLIC_PREFIXES`: map pages, routes, landing page, search, languages);
operators' messages stay ja/en.

Catalogues are compiled (``babel.messages.mofile.write_mo``) when first used and looked up with
:mod:`gettext` (``pgettext``), so there is no ``.mo`` to go stale. Maintenance::

    python -m config.i18n update    # messages.pot from MESSAGES, merged into every .po
    python -m config.i18n check     # exit 1 if a catalogue is out of date (the tests run it)
    python -m config.i18n stats     # translated / fuzzy / missing per language

Names from the city's files (layer, field, page and code-list titles) carry their own optional
``easy`` text in the specs (``I18nText.easy``, ``CodeEntry.easy``); :func:`label` picks it, or the
Japanese.
"""

from __future__ import annotations

import argparse
import gettext
import io
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from config.messages import MESSAGES

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"
EASY = "ja@easy"
#: every language a page offers, in the order of its switch
LANGUAGES = ("ja", "en", EASY)
#: languages translated in gettext catalogues (the others are columns of MESSAGES)
TRANSLATED = (EASY,)
#: message keys residents read (offered for translation)
PUBLIC_PREFIXES = ("map_", "route_", "page_", "search_", "lang_", "card_")
#: ... except what operators read when a publish fails
OPERATOR_KEYS = frozenset({"map_page_no_layers", "map_column_missing", "map_data_too_big",
                           "map_tiles_missing", "route_graph_summary", "route_graph_format",
                           "route_network_layers", "route_network_missing"})
LANGUAGE_NAMES = {"ja": "日本語", "en": "English", EASY: "やさしい にほんご"}


class Named(Protocol):
    ja: str
    en: str


def public_keys() -> list[str]:
    """Keys offered for translation, in table order."""
    return [k for k in MESSAGES if k.startswith(PUBLIC_PREFIXES) and k not in OPERATOR_KEYS]


def template() -> Catalog:
    """``messages.pot``: one entry per public key (context = key, id = the Japanese)."""
    cat = Catalog(domain=DOMAIN, project="uozu-gis public pages", charset="utf-8",
                  copyright_holder="the project's contributors (MIT)")
    for key in public_keys():
        ja, en = MESSAGES[key]
        if ja:  # an empty text (a turn said by word order) has nothing to translate
            cat.add(ja, context=key, auto_comments=[f"en: {en}"])
    return cat


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale, domain=DOMAIN)


def _write(cat: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    write_po(buf, cat, width=0, sort_output=False, omit_header=False, ignore_obsolete=True)
    path.write_bytes(buf.getvalue())


def merge(old: Catalog, tmpl: Catalog, locale: str) -> Catalog:
    """The catalogue for ``tmpl``, keeping ``old``'s translations by key (``msgctxt``): a key
    whose Japanese changed keeps its translation marked fuzzy (with the previous Japanese, for
    the translator); new keys come empty; keys gone from the table are dropped."""
    by_key = {m.context: m for m in old if m.id}
    cat = Catalog(locale=locale, domain=DOMAIN, project=tmpl.project,
                  copyright_holder=tmpl.copyright_holder, fuzzy=False,
                  last_translator=old.last_translator, language_team=old.language_team)
    for m in tmpl:
        if not m.id:
            continue
        prev = by_key.get(m.context)
        string, flags, previous = "", set(), []
        if prev is not None and prev.string:
            string, flags = prev.string, set(prev.flags)
            if prev.id != m.id:
                flags.add("fuzzy")
                previous = [prev.id]
            elif prev.previous_id:
                previous = list(prev.previous_id)
        cat.add(m.id, string, context=m.context, auto_comments=m.auto_comments,
                user_comments=prev.user_comments if prev else (), flags=flags,
                previous_id=previous)
    return cat


def update() -> dict[str, dict[str, int]]:
    """Write ``messages.pot`` and merge it into every translated catalogue (:func:`merge`)."""
    tmpl = template()
    _write(tmpl, LOCALE_DIR / f"{DOMAIN}.pot")
    out = {}
    for locale in TRANSLATED:
        path = po_path(locale)
        old = read_catalog(path, locale) if path.is_file() else Catalog(locale=locale,
                                                                       domain=DOMAIN)
        cat = merge(old, tmpl, locale)
        _write(cat, path)
        out[locale] = stats(cat)
    read_translations.cache_clear()
    return out


def stats(cat: Catalog) -> dict[str, int]:
    entries = [m for m in cat if m.id]
    return {"entries": len(entries),
            "translated": sum(1 for m in entries if m.string and not m.fuzzy),
            "fuzzy": sum(1 for m in entries if m.fuzzy)}


def check() -> list[str]:
    """What ``update`` would change: a stale template or catalogue (as messages)."""
    problems = []
    want = {(m.context, m.id) for m in template() if m.id}
    pot = LOCALE_DIR / f"{DOMAIN}.pot"
    if not pot.is_file() or {(m.context, m.id) for m in read_catalog(pot) if m.id} != want:
        problems.append(f"{pot}: out of date (run python -m config.i18n update)")
    for locale in TRANSLATED:
        path = po_path(locale)
        have = {(m.context, m.id) for m in read_catalog(path, locale) if m.id} \
            if path.is_file() else set()
        if have != want:
            problems.append(f"{path}: {len(want - have)} entries to add or re-check, "
                            f"{len(have - want)} obsolete (run python -m config.i18n update)")
    return problems


@lru_cache(maxsize=8)
def read_translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``locale`` (gettext; fuzzy entries left out)."""
    path = po_path(locale)
    if not path.is_file():
        return gettext.NullTranslations()
    buf = io.BytesIO()
    write_mo(buf, read_catalog(path, locale), use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def template_text(key: str, lang: str) -> str:
    """The unformatted text of ``key`` in ``lang`` (a translation falls back to Japanese)."""
    ja, en = MESSAGES[key]
    if lang == "ja":
        return ja
    if lang == "en":
        return en
    if lang not in TRANSLATED:
        raise KeyError(lang)
    return read_translations(lang).pgettext(key, ja)


def tr(key: str, lang: str, /, **kw: object) -> str:
    """Message ``key`` in ``lang`` (``ja``, ``en`` or a translated locale such as ``ja@easy``)."""
    return template_text(key, lang).format(**kw)


def langs(key: str, /, **kw: object) -> dict[str, str]:
    """``{"ja": ..., "en": ..., "ja@easy": ...}``: every page language of message ``key``."""
    return {lang: tr(key, lang, **kw) for lang in LANGUAGES}


def templates(key: str, /) -> dict[str, str]:
    """The unformatted text of ``key`` in every page language (for a page's own formatting)."""
    return {lang: template_text(key, lang) for lang in LANGUAGES}


def label(named: Named | Any, lang: str) -> str:
    """A name from the city's files in ``lang``: its ``easy`` text for やさしい日本語 (else the
    Japanese), ``ja`` or ``en``."""
    if lang in TRANSLATED:
        return getattr(named, "easy", None) or named.ja
    return named.en if lang == "en" else named.ja


def labels(named: Named | Any) -> dict[str, str]:
    """:func:`label` in every page language."""
    return {lang: label(named, lang) for lang in LANGUAGES}


# ------------------------------------------------------------------ readings of place names


def _kana_numbers() -> dict[int, list[str]]:
    """How 1..49 are read before 丁目 (いっちょうめ, にちょうめ, じゅういっちょうめ ...)."""
    units = {1: ["いっ", "いち"], 2: ["に"], 3: ["さん"], 4: ["よん"], 5: ["ご"],
             6: ["ろく", "ろっ"], 7: ["なな"], 8: ["はっ", "はち"], 9: ["きゅう"]}
    tens = {1: ["じゅっ", "じっ"], 2: ["にじゅっ", "にじっ"], 3: ["さんじゅっ"],
            4: ["よんじゅっ"]}
    tens_full = {1: ["じゅう"], 2: ["にじゅう"], 3: ["さんじゅう"], 4: ["よんじゅう"]}
    out: dict[int, list[str]] = {n: list(u) for n, u in units.items()}
    for t in tens:
        out[10 * t] = tens[t] + tens_full[t]
        for u, us in units.items():
            out[10 * t + u] = [f"{a}{b}" for a in tens_full[t] for b in us]
    return out


_KANA_NUMBERS = _kana_numbers()
_KANA_TO_NUMBER = {k: n for n, ks in _KANA_NUMBERS.items() for k in ks}
_CHOME_KANA_RE = re.compile("(" + "|".join(sorted(_KANA_TO_NUMBER, key=len, reverse=True))
                            + ")(?=ちょうめ)")
_CHOME_DIGIT_RE = re.compile(r"(\d+)(?=ちょうめ)")


def reading_forms(reading: str) -> tuple[str, list[str]]:
    """A 大字 reading -> (sort form with 丁目 as digits, forms people may type in kana).

    ``ばんちょう1ちょうめ`` and ``ばんちょういっちょうめ`` give the sort form
    ``ばんちょう1ちょうめ`` (so 2丁目 sorts before 10丁目) and both spoken forms.
    """
    digits = _CHOME_KANA_RE.sub(lambda m: str(_KANA_TO_NUMBER[m.group(1)]), reading)
    spoken = [digits]
    m = _CHOME_DIGIT_RE.search(digits)
    if m and int(m.group(1)) in _KANA_NUMBERS:
        spoken += [digits[:m.start()] + k + digits[m.end():]
                   for k in _KANA_NUMBERS[int(m.group(1))]]
    return digits, list(dict.fromkeys(spoken))


def reading_key(reading: str) -> tuple[object, ...]:
    """Sort key of a reading: kana order, 丁目 numbers as numbers (2 before 10)."""
    digits, _ = reading_forms(reading)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|\D+", digits))


def entry_langs(entry: Any, fallback: str = "") -> dict[str, str]:
    """A ``{ja, en[, easy]}`` mapping (e.g. a title in ``release.json``) in every page language."""
    if not entry:
        return {lang: fallback for lang in LANGUAGES}
    ja_ = entry.get("ja") or fallback
    easy = entry.get(EASY) or entry.get("easy")  # pages write ja@easy; older releases easy
    return {"ja": ja_, "en": entry.get("en") or ja_, EASY: easy or ja_}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m config.i18n", description=__doc__.split("\n")[0])
    ap.add_argument("action", choices=["update", "check", "stats"])
    args = ap.parse_args(argv)
    if args.action == "update":
        for locale, st in update().items():
            print(f"{locale}: {st}")
        return 0
    if args.action == "check":
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    for locale in TRANSLATED:
        print(f"{locale}: {stats(read_catalog(po_path(locale), locale))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
