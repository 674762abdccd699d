"""Table-driven tests for ``etl.normalize`` over real-world Japanese municipal-data variants."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from etl.normalize import (
    BAD,
    DTYPES,
    NORMALIZERS,
    NormalizerDef,
    apply_normalizer,
    current_fiscal_year,
)

NA = pd.NA


def run(name: str, raw: list[Any], **params: Any) -> pd.DataFrame:
    """Apply one normalizer through the pipeline helper."""
    tables = params.pop("tables", None)
    return apply_normalizer(name, pd.Series(raw, dtype=object), params, tables)


def cell(df: pd.DataFrame, col: str, i: int = 0) -> Any:
    """One output cell with NA folded to ``None`` so cases compare with ``==``."""
    v = df[col].iloc[i]
    return None if v is NA else v


# --------------------------------------------------------------------------------------
# Registry contract
# --------------------------------------------------------------------------------------

EXPECTED_NAMES = {
    "nfkc", "upper", "number", "int", "wareki", "chiban", "depth_range", "flag",
    "map", "lookup", "strip_unit", "zfill", "date", "quantity",
}  # fmt: skip


def test_registry_names() -> None:
    assert set(NORMALIZERS) == EXPECTED_NAMES


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_registry_definition(name: str) -> None:
    d = NORMALIZERS[name]
    assert isinstance(d, NormalizerDef)
    assert "" in d.outputs
    assert set(d.outputs.values()) <= {"str", "int", "float", "bool"}
    assert " / " in d.doc and "\n" not in d.doc
    assert d.needs_tables is (name == "lookup")


@pytest.mark.parametrize(
    ("name", "params", "raw"),
    [
        ("nfkc", {}, ["Ａ", None]),
        ("upper", {}, ["a", None]),
        ("number", {}, ["5.5m", "x", None]),
        ("int", {}, ["5", "5.5", None]),
        ("wareki", {}, ["S55", "ABC", None]),
        ("chiban", {}, ["123-4", "abc", None]),
        ("depth_range", {}, ["1m以上2m未満", "abc", None]),
        ("flag", {}, ["○", "?", None]),
        ("map", {"values": {"a": "b"}}, ["a", None]),
        ("lookup", {"table": "t", "tables": {"t": {"1": "x"}}}, ["1", None]),
        ("strip_unit", {"unit": "mm"}, ["5mm", None]),
        ("zfill", {"width": 3}, ["5", None]),
        ("date", {}, ["2000/04/01", "x", None]),
        ("quantity", {"unit": "m"}, ["3.0m", "3kg", None]),
    ],
)
def test_output_shape_and_dtypes(name: str, params: dict[str, Any], raw: list[Any]) -> None:
    """Direct call: Series or DataFrame of the declared columns (+ "!bad"), same index."""
    d = NORMALIZERS[name]
    tables = params.pop("tables", None)
    s = pd.Series(raw, index=[10 * i + 7 for i in range(len(raw))], dtype=object)
    out = d.func(s, **params, **({"tables": tables} if d.needs_tables else {}))
    if isinstance(out, pd.Series):
        assert list(d.outputs) == [""]
        out = out.to_frame("")
    assert set(out.columns) - {BAD} == set(d.outputs)
    assert out.index.equals(s.index)
    for suffix, typ in d.outputs.items():
        assert out[suffix].dtype == pd.api.types.pandas_dtype(DTYPES[typ]), suffix
    if BAD in out.columns:
        assert out[BAD].dtype == bool
        assert not out[BAD].iloc[-1]  # None is never bad

    full = apply_normalizer(name, s, params, tables)
    assert list(full.columns) == [*d.outputs, BAD]
    assert full[BAD].dtype == bool
    assert full.index.equals(s.index)


def test_apply_normalizer_adds_false_bad_column() -> None:
    out = run("nfkc", ["ａ", None])
    assert list(out.columns) == ["", BAD]
    assert not out[BAD].any()


def test_apply_normalizer_unknown_name() -> None:
    with pytest.raises(KeyError):
        run("no_such_normalizer", ["x"])


# --------------------------------------------------------------------------------------
# nfkc / upper
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "ABC123"),
        ("１２３－４", "123-4"),
        ("１２３ー４", "123-4"),  # 長音 between digits is a hyphen
        ("123ｰ4", "123-4"),  # half-width 長音
        ("A‐1", "A-1"),  # U+2010
        ("A‑1", "A-1"),  # U+2011
        ("1‒2", "1-2"),  # U+2012
        ("1–2", "1-2"),  # en dash
        ("1—2", "1-2"),  # em dash
        ("1―2", "1-2"),  # U+2015
        ("1−2", "1-2"),  # minus sign
        ("1─2", "1-2"),  # box drawing
        ("1━2", "1-2"),
        ("1﹣2", "1-2"),
        ("Aー1", "A-1"),
        ("センター", "センター"),  # 長音 inside a word stays
        ("ｾﾝﾀｰ", "センター"),
        ("コーポ１ー２", "コーポ1-2"),
        ("  魚津　 市役所  ", "魚津 市役所"),  # full-width space, collapsed
        ("魚津\t\n市", "魚津 市"),
        ("㍻", "平成"),
        ("", None),
        ("　", None),
        (None, None),
        (np.nan, None),
        (123, "123"),
        (123.0, "123"),
    ],
)
def test_nfkc(raw: Any, expected: str | None) -> None:
    assert cell(run("nfkc", [raw]), "") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" ab-1 ", "AB-1"), ("Abc", "ABC"), ("", None), (None, None), ("ｓ", "Ｓ")],
)
def test_upper(raw: Any, expected: str | None) -> None:
    assert cell(run("upper", [raw]), "") == expected


# --------------------------------------------------------------------------------------
# number / int
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "bad"),
    [
        ("5.5m", 5.5, False),
        ("５．５ｍ", 5.5, False),
        ("W=5.5", 5.5, False),
        ("約6.0", 6.0, False),
        ("6", 6.0, False),
        ("6.0 m", 6.0, False),
        ("1,200", 1200.0, False),
        ("１，２００ｍｍ", 1200.0, False),
        ("φ150", 150.0, False),
        (".5", 0.5, False),
        ("−5", -5.0, False),
        ("-0.5m", -0.5, False),
        ("H-5", 5.0, False),  # a joiner, not a sign
        ("10-20m", 10.0, False),  # first number
        (6, 6.0, False),
        (5.5, 5.5, False),
        (np.int64(7), 7.0, False),
        ("1,20", None, True),  # not a thousands separator: refuse to guess
        ("不明", None, True),
        ("abc", None, True),
        ("", None, False),
        (None, None, False),
        (np.nan, None, False),
        (float("inf"), None, True),
    ],
)
def test_number(raw: Any, expected: float | None, bad: bool) -> None:
    out = run("number", [raw])
    assert cell(out, "") == expected
    assert bool(out[BAD].iloc[0]) is bad
    assert out[""].dtype == "Float64"


@pytest.mark.parametrize(
    ("raw", "expected", "bad"),
    [
        ("5", 5, False),
        ("５", 5, False),
        ("5.0", 5, False),
        ("1,200", 1200, False),
        ("約12本", 12, False),
        ("-3", -3, False),
        (7, 7, False),
        (7.0, 7, False),
        ("5.5", None, True),  # rounding is not allowed
        (5.5, None, True),
        ("なし", None, True),
        ("", None, False),
        (None, None, False),
        ("12345678901234567", 12345678901234567, False),  # no float precision loss
    ],
)
def test_int(raw: Any, expected: int | None, bad: bool) -> None:
    out = run("int", [raw])
    assert cell(out, "") == expected
    assert bool(out[BAD].iloc[0]) is bad
    assert out[""].dtype == "Int64"


# --------------------------------------------------------------------------------------
# wareki
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "year", "qual"),
    [
        ("S55", 1980, "exact"),
        ("Ｈ１２", 2000, "exact"),
        ("H.12", 2000, "exact"),
        ("H12年", 2000, "exact"),
        ("平成12年度", 2000, "exact"),
        ("平成元年度", 1989, "exact"),
        ("平成元年", 1989, "exact"),
        ("R1", 2019, "exact"),
        ("R01", 2019, "exact"),
        ("令和元年", 2019, "exact"),
        ("R3", 2021, "exact"),
        ("昭55", 1980, "exact"),
        ("昭和55年", 1980, "exact"),
        ("S40頃", 1965, "approx"),
        ("昭和40年頃", 1965, "approx"),
        ("S40年代", 1965, "approx"),
        ("約S40", 1965, "approx"),
        ("S40?", 1965, "approx"),
        ("S50以前", 1975, "before"),
        ("H5以降", 1993, "after"),
        ("T10", 1921, "exact"),
        ("T15", 1926, "exact"),
        ("M45", 1912, "exact"),
        ("H31", 2019, "exact"),
        ("S64", 1989, "exact"),
        ("s55", 1980, "exact"),
        (" H 12 ", 2000, "exact"),
        ("㍻12年", 2000, "exact"),
        ("1985", 1985, "exact"),
        ("1985年度", 1985, "exact"),
        ("１９８５", 1985, "exact"),
        ("1985年頃", 1985, "approx"),
        (1985, 1985, "exact"),
        (1985.0, 1985, "exact"),
        ("H12.4.1", 2000, "exact"),  # a full date: its fiscal year
        ("H12.3.31", 1999, "exact"),  # January-March belong to the previous 年度
        ("2001/02/01", 2000, "exact"),
    ],
)
def test_wareki_ok(raw: Any, year: int, qual: str) -> None:
    out = run("wareki", [raw])
    assert cell(out, "") == year
    assert cell(out, "_qual") == qual
    assert not out[BAD].iloc[0]


@pytest.mark.parametrize("raw", ["不明", "?", "？", "－", "-", "", "  ", None, np.nan, "不詳"])
def test_wareki_unknown_is_not_bad(raw: Any) -> None:
    out = run("wareki", [raw])
    assert cell(out, "") is None
    assert cell(out, "_qual") == "unknown"
    assert not out[BAD].iloc[0]


@pytest.mark.parametrize(
    "raw",
    ["55", "H40", "S70", "R99", "T20", "M46", "H0", "ABC", "平成", "123", "0985", "S55年3月"],
)
def test_wareki_bad(raw: Any) -> None:
    out = run("wareki", [raw])
    assert cell(out, "") is None
    assert cell(out, "_qual") == "unknown"
    assert bool(out[BAD].iloc[0])


def test_wareki_future_year_is_bad() -> None:
    fy = current_fiscal_year()
    out = run("wareki", [str(fy), str(fy + 1), f"R{fy - 2019 + 1}", f"R{fy - 2019 + 2}"])
    assert out[BAD].tolist() == [False, True, False, True]
    assert cell(out, "", 0) == fy
    assert cell(out, "", 2) == fy


@pytest.mark.parametrize(
    ("today", "fy"),
    [(dt.date(2024, 3, 31), 2023), (dt.date(2024, 4, 1), 2024), (dt.date(2025, 12, 1), 2025)],
)
def test_current_fiscal_year(today: dt.date, fy: int) -> None:
    assert current_fiscal_year(today) == fy


@pytest.mark.parametrize(
    ("raw", "era", "year"),
    [("55", "S", 1980), (55, "S", 1980), ("元", "H", 1989), ("12年度", "平成", 2000)],
)
def test_wareki_implied_era(raw: Any, era: str, year: int) -> None:
    out = run("wareki", [raw, "H12"], implied_era=era)
    assert cell(out, "") == year
    assert cell(out, "", 1) == 2000  # explicit era still wins
    assert not out[BAD].any()


def test_wareki_bad_implied_era_is_config_error() -> None:
    with pytest.raises(ValueError, match="implied_era"):
        run("wareki", ["55"], implied_era="X")


@pytest.mark.parametrize("raw", [" H12 ", "Ｈ１２", "", None, 1985])
def test_wareki_raw_is_as_given(raw: Any) -> None:
    out = run("wareki", [raw])
    expected = None if raw is None else str(raw)
    assert cell(out, "_raw") == expected


def test_wareki_dtypes() -> None:
    out = run("wareki", ["S55", None])
    assert out[""].dtype == "Int64"
    assert out["_qual"].dtype == "string"
    assert out["_raw"].dtype == "string"


# --------------------------------------------------------------------------------------
# chiban
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "norm", "main", "branch"),
    [
        ("123番4", "123-4", 123, 4),
        ("123-4", "123-4", 123, 4),
        ("１２３－４", "123-4", 123, 4),
        ("123の4", "123-4", 123, 4),
        ("123ノ4", "123-4", 123, 4),
        ("123番地4", "123-4", 123, 4),
        ("123番地の4", "123-4", 123, 4),
        ("123番の4", "123-4", 123, 4),
        ("123番", "123", 123, None),
        ("123番地", "123", 123, None),
        ("123", "123", 123, None),
        (" 123 - 4 ", "123-4", 123, 4),
        ("１２３ー４", "123-4", 123, 4),
        ("123−4", "123-4", 123, 4),
        ("0123-04", "123-4", 123, 4),
        ("123-4-5", "123-4-5", 123, 4),
        ("甲123", "甲123", 123, None),
        ("イ123-1", "イ123-1", 123, 1),
        ("ｲ123-1", "イ123-1", 123, 1),
        ("甲123番地の1", "甲123-1", 123, 1),
        (123, "123", 123, None),
        (123.0, "123", 123, None),
    ],
)
def test_chiban(raw: Any, norm: str, main: int, branch: int | None) -> None:
    out = run("chiban", [raw])
    assert cell(out, "") == norm
    assert cell(out, "_main") == main
    assert cell(out, "_branch") == branch
    assert not out[BAD].iloc[0]


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("地区外", "地区外"),
        ("別図", "別図"),
        ("別図-5", "別図-5"),
        ("別図－５", "別図-5"),
        ("不明", "不明"),
    ],
)
def test_chiban_special(raw: str, norm: str) -> None:
    out = run("chiban", [raw])
    assert cell(out, "") == norm
    assert cell(out, "_main") is None
    assert cell(out, "_branch") is None
    assert cell(out, "_raw") == raw
    assert not out[BAD].iloc[0]


@pytest.mark.parametrize("raw", ["abc", "abc123", "123.4", "-", "番地"])
def test_chiban_bad(raw: str) -> None:
    out = run("chiban", [raw])
    assert bool(out[BAD].iloc[0])
    assert cell(out, "_main") is None


@pytest.mark.parametrize("raw", [None, "", "　"])
def test_chiban_missing(raw: Any) -> None:
    out = run("chiban", [raw])
    assert cell(out, "") is None
    assert cell(out, "_main") is None
    assert not out[BAD].iloc[0]


def test_chiban_dtypes_and_raw() -> None:
    out = run("chiban", ["１２３－４", None])
    assert out[""].dtype == "string"
    assert out["_main"].dtype == "Int64"
    assert out["_branch"].dtype == "Int64"
    assert cell(out, "_raw") == "１２３－４"
    assert cell(out, "_raw", 1) is None


def test_chain_nfkc_then_chiban() -> None:
    raw = pd.Series(["　１２３ー４　", "甲１２３番地", None, "地区外", "ｘｙｚ"], dtype=object)
    step1 = apply_normalizer("nfkc", raw, {})
    step2 = apply_normalizer("chiban", step1[""], {})
    assert step2[""].tolist() == ["123-4", "甲123", NA, "地区外", "xyz"]
    assert step2["_main"].tolist() == [123, 123, NA, NA, NA]
    assert step2[BAD].tolist() == [False, False, False, False, True]


# --------------------------------------------------------------------------------------
# depth_range
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "label", "lo", "hi", "rank"),
    [
        ("0.3m以上 1.0m未満", "0.3m以上 1.0m未満", 0.3, 1.0, 1),
        ("1m以上2m未満", "1m以上2m未満", 1.0, 2.0, 2),
        ("１ｍ以上２ｍ未満", "1m以上2m未満", 1.0, 2.0, 2),
        ("5.0m以上", "5.0m以上", 5.0, None, 4),
        ("0.3m未満", "0.3m未満", None, 0.3, 1),
        ("0.5m未満", "0.5m未満", None, 0.5, 1),
        ("3m未満", "3m未満", None, 3.0, 2),
        ("10m～20m", "10m~20m", 10.0, 20.0, 5),
        ("10-20m", "10-20m", 10.0, 20.0, 5),
        ("10〜20m", "10〜20m", 10.0, 20.0, 5),
        ("20m以上", "20m以上", 20.0, None, 6),
        ("0.5m以上3.0m未満", "0.5m以上3.0m未満", 0.5, 3.0, 2),
        ("3.0m以上5.0m未満", "3.0m以上5.0m未満", 3.0, 5.0, 3),
        ("5m以上10m未満", "5m以上10m未満", 5.0, 10.0, 4),
        ("0.5m以上3.0m未満（床上浸水）", "0.5m以上3.0m未満(床上浸水)", 0.5, 3.0, 2),
        ("50cm以上", "50cm以上", 0.5, None, 2),
        ("0m以上0.5m未満", "0m以上0.5m未満", 0.0, 0.5, 1),
    ],
)
def test_depth_range(raw: str, label: str, lo: float | None, hi: float | None, rank: int) -> None:
    out = run("depth_range", [raw])
    assert cell(out, "") == label
    assert cell(out, "_min_m") == lo
    assert cell(out, "_max_m") == hi
    assert cell(out, "_rank") == rank
    assert not out[BAD].iloc[0]


@pytest.mark.parametrize("raw", ["abc", "浸水あり", "2m以上1m未満", "5"])
def test_depth_range_bad(raw: str) -> None:
    out = run("depth_range", [raw])
    assert bool(out[BAD].iloc[0])
    assert cell(out, "_rank") is None


def test_depth_range_missing_and_dtypes() -> None:
    out = run("depth_range", [None, "", "1m以上2m未満"])
    assert out[BAD].tolist() == [False, False, False]
    assert out[""].isna().tolist() == [True, True, False]
    assert out["_min_m"].dtype == "Float64"
    assert out["_max_m"].dtype == "Float64"
    assert out["_rank"].dtype == "Int64"


# --------------------------------------------------------------------------------------
# flag
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["1", "○", "〇", "◯", "●", "有", "あり", "true", "True", "Y", "y", 1, True, "１", 1.0]
)
def test_flag_true(raw: Any) -> None:
    out = run("flag", [raw])
    assert cell(out, "") == True  # noqa: E712 (numpy bool scalar)
    assert not out[BAD].iloc[0]


@pytest.mark.parametrize(
    "raw", ["", None, NA, np.nan, "0", "×", "無", "なし", "false", "N", 0, False, "　"]
)
def test_flag_false(raw: Any) -> None:
    out = run("flag", [raw])
    assert cell(out, "") == False  # noqa: E712 (numpy bool scalar)
    assert not out[BAD].iloc[0]


@pytest.mark.parametrize("raw", ["maybe", "2", "△", 2])
def test_flag_bad(raw: Any) -> None:
    out = run("flag", [raw])
    assert bool(out[BAD].iloc[0])
    assert out[""].dtype == "boolean"


# --------------------------------------------------------------------------------------
# map / lookup
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "params", "expected"),
    [
        ("1", {"values": {"1": "鋳鉄管", "2": "鋼管"}}, "鋳鉄管"),
        (" 2 ", {"values": {"1": "鋳鉄管", "2": "鋼管"}}, "鋼管"),
        (2, {"values": {1: "A", 2: "B"}}, "B"),  # keys compared as str
        (2.0, {"values": {"2": "B"}}, "B"),  # Excel float
        ("9", {"values": {"1": "A"}}, "9"),  # unmapped passes through
        ("9", {"values": {"1": "A"}, "default": "その他"}, "その他"),
        ("9", {"values": {"1": "A"}, "default": None}, None),
        ("不明", {"values": {"不明": None}}, None),
        (None, {"values": {"1": "A"}, "default": "X"}, None),
    ],
)
def test_map(raw: Any, params: dict[str, Any], expected: str | None) -> None:
    assert cell(run("map", [raw], **params), "") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("01", "ダクタイル鋳鉄管"),
        (" 02 ", "硬質塩化ビニル管"),
        ("99", "99"),
        ("", None),
        (None, None),
    ],
)
def test_lookup(raw: Any, expected: str | None) -> None:
    tables = {"pipe_material": {"01": "ダクタイル鋳鉄管", "02": "硬質塩化ビニル管"}}
    out = run("lookup", [raw], table="pipe_material", tables=tables)
    assert cell(out, "") == expected
    assert not out[BAD].any()


def test_lookup_missing_table() -> None:
    with pytest.raises(KeyError, match="nope"):
        run("lookup", ["1"], table="nope", tables={"t": {}})


# --------------------------------------------------------------------------------------
# strip_unit / zfill / date
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        ("150mm", "mm", "150"),
        ("１５０ｍｍ", "mm", "150"),
        ("150 mm", "mm", "150"),
        ("150MM", "mm", "150"),
        ("150", "mm", "150"),
        ("5.5m", "m", "5.5"),
        ("5mm", "m", "5m"),  # only one trailing unit
        ("", "mm", None),
        (None, "mm", None),
    ],
)
def test_strip_unit(raw: Any, unit: str, expected: str | None) -> None:
    assert cell(run("strip_unit", [raw], unit=unit), "") == expected


def test_strip_unit_then_number() -> None:
    s1 = apply_normalizer("strip_unit", pd.Series(["７５ｍｍ", None]), {"unit": "mm"})
    s2 = apply_normalizer("number", s1[""], {})
    assert s2[""].tolist() == [75.0, NA]


@pytest.mark.parametrize(
    ("raw", "width", "expected"),
    [
        ("5", 3, "005"),
        ("０５", 3, "005"),
        (5, 3, "005"),
        (5.0, 3, "005"),
        ("1234", 3, "1234"),
        ("A1", 3, "A1"),  # not digits: unchanged
        ("", 3, None),
        (None, 3, None),
    ],
)
def test_zfill(raw: Any, width: int, expected: str | None) -> None:
    assert cell(run("zfill", [raw], width=width), "") == expected


@pytest.mark.parametrize(
    ("raw", "expected", "bad"),
    [
        ("2000/04/01", "2000-04-01", False),
        ("2000-04-01", "2000-04-01", False),
        ("2000/4/1", "2000-04-01", False),
        ("2000.4.1", "2000-04-01", False),
        ("2000年4月1日", "2000-04-01", False),
        ("２０００／４／１", "2000-04-01", False),
        ("20000401", "2000-04-01", False),
        ("2000-04-01 00:00:00", "2000-04-01", False),
        ("H12.4.1", "2000-04-01", False),
        ("平成12年4月1日", "2000-04-01", False),
        ("R3.10.5", "2021-10-05", False),
        ("令和元年5月1日", "2019-05-01", False),
        ("S55.1.1", "1980-01-01", False),
        (dt.date(2001, 2, 3), "2001-02-03", False),
        (pd.Timestamp("2001-02-03 12:00"), "2001-02-03", False),
        ("2000/02/30", None, True),
        ("H40.1.1", None, True),
        ("昨日", None, True),
        ("", None, False),
        (None, None, False),
    ],
)
def test_date(raw: Any, expected: str | None, bad: bool) -> None:
    out = run("date", [raw])
    assert cell(out, "") == expected
    assert bool(out[BAD].iloc[0]) is bad


# --------------------------------------------------------------------------------------
# NA handling and vectorization
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [object, "string", "str"])
def test_missing_values_across_dtypes(dtype: Any) -> None:
    s = pd.Series(["S55", None, "H12", None], dtype=dtype)
    out = apply_normalizer("wareki", s, {})
    assert out[""].tolist() == [1980, NA, 2000, NA]
    assert not out[BAD].any()


def test_numeric_series_input() -> None:
    out = apply_normalizer("number", pd.Series([1.5, np.nan, 3.0]), {})
    assert out[""].tolist() == [1.5, NA, 3.0]
    out = apply_normalizer("wareki", pd.Series([1985, 2000]), {})
    assert out[""].tolist() == [1985, 2000]


def test_non_default_index_is_kept() -> None:
    s = pd.Series(["123-4", "abc", None], index=["a", "b", "c"])
    out = apply_normalizer("chiban", s, {})
    assert list(out.index) == ["a", "b", "c"]
    assert out[BAD].to_dict() == {"a": False, "b": True, "c": False}


def test_wareki_vectorized_speed() -> None:
    """200k rows, 20 distinct values: parse once per distinct value (sanity guard)."""
    distinct = [
        "S55", "Ｈ１２", "平成元年度", "R3", "S40頃", "H5以降", "T10", "1985", "不明", None,
        "昭和55年", "H.12", "R01", "S50以前", "M45", "１９８５", "ABC", "H40", "H31", "",
    ]  # fmt: skip
    s = pd.Series(distinct * 10_000, dtype=object)
    start = time.perf_counter()
    out = apply_normalizer("wareki", s, {})
    elapsed = time.perf_counter() - start
    assert len(out) == 200_000
    assert out[BAD].sum() == 20_000  # ABC, H40
    assert out[""].iloc[0] == 1980 and out[""].iloc[20] == 1980
    assert elapsed < 5.0
