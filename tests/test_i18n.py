"""One catalogue: ja/en in the message table, other languages (やさしい日本語) in gettext .po files
kept in sync with it; a missing or fuzzy translation falls back to the Japanese."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog

from config import i18n
from config.messages import MESSAGES, ja
from config.models import CodeEntry, I18nText


def test_shipped_catalogues_are_in_sync_with_the_message_table() -> None:
    assert i18n.check() == []  # else: python -m config.i18n update, then translate


def test_babel_knows_the_easy_japanese_locale() -> None:
    loc = Locale.parse(i18n.EASY)
    assert (loc.language, loc.modifier) == ("ja", "easy")


def test_template_holds_what_residents_read_only() -> None:
    keys = i18n.public_keys()
    assert "map_hz_card_title" in keys and "route_step" in keys and "page_opendata" in keys
    assert not set(keys) & i18n.OPERATOR_KEYS
    assert not any(k.startswith(("spec_", "mapcfg_", "err_", "staff_")) for k in keys)
    tmpl = {m.context: m for m in i18n.template() if m.id}
    assert tmpl["map_kind_flood"].id == ja("map_kind_flood")
    assert tmpl["map_kind_flood"].auto_comments == [f"en: {MESSAGES['map_kind_flood'][1]}"]


@pytest.fixture
def catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private locale folder with a few translations (one of them fuzzy)."""
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.read_translations.cache_clear()
    i18n.update()
    path = i18n.po_path(i18n.EASY)
    cat = i18n.read_catalog(path, i18n.EASY)
    out = Catalog(locale=i18n.EASY, domain=i18n.DOMAIN)
    for m in cat:
        if not m.id:
            continue
        string, flags = "", ()
        if m.context == "map_kind_flood":
            string = "こうずい（かわの みずが あふれる）"
        elif m.context == "map_hz_shelter_distance":
            string = "まっすぐ {d} m"
        elif m.context == "map_kind_tsunami":
            string, flags = "つなみ", ("fuzzy",)
        out.add(m.id, string, context=m.context, flags=flags)
    i18n._write(out, path)
    i18n.read_translations.cache_clear()
    yield path
    i18n.read_translations.cache_clear()


def test_translation_fuzzy_and_fallback(catalogue: Path) -> None:
    assert i18n.tr("map_kind_flood", i18n.EASY) == "こうずい（かわの みずが あふれる）"
    assert i18n.tr("map_hz_shelter_distance", i18n.EASY, d=120) == "まっすぐ 120 m"
    assert i18n.tr("map_kind_tsunami", i18n.EASY) == ja("map_kind_tsunami")  # fuzzy: not used
    assert i18n.tr("map_kind_earthquake", i18n.EASY) == ja("map_kind_earthquake")  # missing
    assert i18n.langs("map_hz_shelter_distance", d=5) == {
        "ja": ja("map_hz_shelter_distance", d=5), "en": MESSAGES["map_hz_shelter_distance"][1]
        .format(d=5), i18n.EASY: "まっすぐ 5 m"}
    with pytest.raises(KeyError):
        i18n.tr("map_kind_flood", "fr")


def test_changed_japanese_makes_the_translation_fuzzy(catalogue: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MESSAGES, "map_kind_flood", ("洪水（河川の氾濫）", "Flood"))
    assert i18n.check() != []
    stats = i18n.update()[i18n.EASY]
    assert stats["fuzzy"] == 1 + 1  # the changed one, and the one already fuzzy
    i18n.read_translations.cache_clear()
    assert i18n.tr("map_kind_flood", i18n.EASY) == "洪水（河川の氾濫）"
    cat = i18n.read_catalog(catalogue, i18n.EASY)
    old = next(m for m in cat if m.context == "map_kind_flood")
    assert old.fuzzy and old.string == "こうずい（かわの みずが あふれる）"


def test_names_from_the_specs() -> None:
    t = I18nText(ja="指定緊急避難場所", en="Evacuation sites", easy="にげる ばしょ")
    assert i18n.labels(t) == {"ja": "指定緊急避難場所", "en": "Evacuation sites",
                              i18n.EASY: "にげる ばしょ"}
    c = CodeEntry(ja="0.5m未満", en="under 0.5 m")
    assert i18n.label(c, i18n.EASY) == "0.5m未満"
