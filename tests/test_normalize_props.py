"""Property-based tests (hypothesis) of the normalizers: invariants and round trips.

和暦 years and dates (era boundaries, 元年), 地番 spellings, numbers with units and NFKC text:
any value a ledger can hold is generated, written the ways ledgers write it, and must read back
as what it was, or be reported bad, never silently something else.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata

import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from etl.normalize import ERA_DAYS, apply_normalizer, current_fiscal_year

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
ERA_KANJI = {"M": "明治", "T": "大正", "S": "昭和", "H": "平成", "R": "令和"}
FW = str.maketrans("0123456789-.", "０１２３４５６７８９－．")


def one(name: str, value: object, **params: object) -> pd.Series:
    return apply_normalizer(name, pd.Series([value], dtype=object), params).iloc[0]


def _era_of(d: dt.date) -> str:
    return next(e for e, (a, b) in ERA_DAYS.items() if a <= d and (b is None or d <= b))


def _num(era: str, n: int, kanji: bool) -> str:
    return "元" if n == 1 and kanji else str(n)


# ------------------------------------------------------------------------------ 和暦 dates

dates = st.dates(min_value=dt.date(1868, 1, 1), max_value=dt.date.today())


@SETTINGS
@given(d=dates, style=st.sampled_from(["letter", "kanji", "fullwidth", "dot"]))
def test_era_dates_round_trip(d: dt.date, style: str) -> None:
    era = _era_of(d)
    n = d.year - ERA_DAYS[era][0].year + 1
    if style == "kanji":
        text = f"{ERA_KANJI[era]}{_num(era, n, True)}年{d.month}月{d.day}日"
    elif style == "fullwidth":
        text = f"{era}{n}.{d.month}.{d.day}".translate(FW)
    elif style == "dot":
        text = f"{era}.{n}/{d.month}/{d.day}"
    else:
        text = f"{era}{n}.{d.month}.{d.day}"
    got = one("date", text)
    assert got[""] == d.isoformat() and not got["!bad"], text


@SETTINGS
@given(d=dates, era=st.sampled_from(list(ERA_DAYS)))
def test_era_dates_outside_the_era_are_bad(d: dt.date, era: str) -> None:
    """令和元年4月1日 or H1.1.1 never existed: a date written in an era it is not in is bad."""
    first, last = ERA_DAYS[era]
    n = d.year - first.year + 1
    assume(1 <= n <= 99)
    text = f"{ERA_KANJI[era]}{_num(era, n, True)}年{d.month}月{d.day}日"
    got = one("date", text)
    inside = first <= d and (last is None or d <= last)
    assert bool(got["!bad"]) is (not inside), text
    assert (got[""] == d.isoformat()) if inside else pd.isna(got[""])


def test_era_boundaries_examples() -> None:
    for text, ok in (("令和元年4月1日", False), ("令和元年5月1日", True), ("H1.1.1", False),
                     ("H1.1.8", True), ("S64.1.7", True), ("S64.1.8", False),
                     ("H31.4.30", True), ("H31.5.1", False), ("T15.12.24", True),
                     ("T15.12.25", False), ("M45.7.29", True), ("M45.7.30", False)):
        assert bool(one("date", text)["!bad"]) is (not ok), text


# ------------------------------------------------------------------------------ 和暦 years

@SETTINGS
@given(era=st.sampled_from(list(ERA_DAYS)), n=st.integers(1, 64),
       style=st.sampled_from(["S55", "Ｓ５５", "昭和55年度", "昭55", "S.55", "S-55"]),
       qual=st.sampled_from([("", "exact"), ("頃", "approx"), ("以前", "before"),
                             ("以降", "after"), ("約", "approx")]))
def test_wareki_years_round_trip(era: str, n: int, style: str, qual: tuple[str, str]) -> None:
    first, last = ERA_DAYS[era]
    last_n = (last.year - first.year + 1) if last else current_fiscal_year() - first.year + 1
    assume(n <= last_n)
    num = str(n)
    text = {"S55": f"{era}{num}", "Ｓ５５": f"{era}{num}".translate(FW).replace(
        era, chr(ord(era) + 0xFEE0)), "昭和55年度": f"{ERA_KANJI[era]}{_num(era, n, True)}年度",
        "昭55": f"{ERA_KANJI[era][0]}{num}", "S.55": f"{era}.{num}", "S-55": f"{era}-{num}"}[style]
    text = qual[0] + text if qual[0] == "約" else text + qual[0]
    got = apply_normalizer("wareki", pd.Series([text], dtype=object)).iloc[0]
    year = first.year + n - 1
    if year > current_fiscal_year():
        assert got["!bad"], text
        return
    assert (got[""], got["_qual"], got["_raw"], bool(got["!bad"])) == (
        year, qual[1], text, False), text


@SETTINGS
@given(n=st.integers(65, 99))
def test_wareki_beyond_an_era_is_bad(n: int) -> None:
    got = one("wareki", f"S{n}")
    assert got["!bad"] and pd.isna(got[""])


# ------------------------------------------------------------------------------ 地番

SEPARATORS = ["-", "番", "番地", "の", "番の", "番地の", "ー", "－", "‐", "ノ"]


@SETTINGS
@given(main=st.integers(1, 99999), branch=st.one_of(st.none(), st.integers(1, 9999)),
       sep=st.sampled_from(SEPARATORS), fullwidth=st.booleans(),
       prefix=st.sampled_from(["", "甲", "乙"]), tail=st.sampled_from(["", "番", "番地"]))
def test_chiban_spellings_round_trip(main: int, branch: int | None, sep: str, fullwidth: bool,
                                     prefix: str, tail: str) -> None:
    text = f"{prefix}{main}" + (f"{sep}{branch}" if branch is not None else tail)
    if fullwidth:
        text = text.translate(FW)
    got = one("chiban", text)
    norm = f"{prefix}{main}" + (f"-{branch}" if branch is not None else "")
    assert (got[""], got["_main"], got["_raw"], bool(got["!bad"])) == (norm, main, text, False)
    assert (None if pd.isna(got["_branch"]) else got["_branch"]) == branch
    again = one("chiban", norm)  # idempotent on its own output
    assert again[""] == norm and not again["!bad"]


@SETTINGS
@given(text=st.text(alphabet="abcxyz!?#&", min_size=1, max_size=8))
def test_chiban_garbage_is_bad(text: str) -> None:
    assert one("chiban", text)["!bad"]


# ------------------------------------------------------------------------------ quantities

UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "km": 1000.0, "ｍ": 1.0, "メートル": 1.0}


@SETTINGS
@given(v=st.decimals(min_value=0, max_value=10000, places=2, allow_nan=False),
       unit=st.sampled_from(list(UNITS)), fullwidth=st.booleans(),
       qual=st.sampled_from([("", "", "exact"), ("約", "", "approx"), ("", "程度", "approx"),
                             ("", "未満", "below"), ("", "以上", "above")]))
def test_quantity_units_and_qualifiers(v, unit: str, fullwidth: bool,
                                       qual: tuple[str, str, str]) -> None:
    text = f"{qual[0]}{v}{unit}{qual[1]}"
    if fullwidth:
        text = text.translate(FW)
    got = one("quantity", text, unit="m")
    want = float(v) * UNITS[unit]
    if qual[2] in ("below", "above"):  # a bound is not a value unless the policy keeps it
        assert got["!bad"] and pd.isna(got[""]) and got["_qual"] == qual[2]
        got = one("quantity", text, unit="m", bounds="keep")
    assert not got["!bad"] and got["_qual"] == qual[2], text
    assert math.isclose(got[""], want, rel_tol=1e-9, abs_tol=1e-9), (text, got[""], want)
    strict = one("quantity", text, unit="m", approx="bad", bounds="keep")
    assert bool(strict["!bad"]) is (qual[2] == "approx")


@SETTINGS
@given(v=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
       unit=st.sampled_from(["kg", "t", "円", "%", "m2"]))
def test_quantity_other_units_are_bad(v: float, unit: str) -> None:
    assert one("quantity", f"{v:.3f}{unit}", unit="m")["!bad"]


@SETTINGS
@given(i=st.integers(-(2**70), 2**70))
def test_int_fits_int64_or_is_bad(i: int) -> None:
    got = one("int", str(i))
    if abs(i) <= 2**63 - 1:
        assert got[""] == i and not got["!bad"]
    else:
        assert got["!bad"] and pd.isna(got[""])


@SETTINGS
@given(x=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9))
def test_number_reads_back_what_was_written(x: float) -> None:
    text = f"{x:,.4f}"
    got = one("number", text)
    assert math.isclose(got[""], float(text.replace(",", "")), rel_tol=0, abs_tol=1e-9)
    assert math.isclose(one("number", text.translate(FW))[""], got[""], abs_tol=1e-9)


# ------------------------------------------------------------------------------ NFKC

@SETTINGS
@given(s=st.text(max_size=40))
def test_nfkc_is_idempotent_and_tidy(s: str) -> None:
    out = one("nfkc", s)[""]
    if pd.isna(out):  # only text that is nothing but spaces and invisible characters
        rest = unicodedata.normalize("NFKC", s)
        assert all(c.isspace() or c in "\u200b\u200c\u200d\u2060\ufeff" for c in rest), s
        return
    assert one("nfkc", out)[""] == out  # idempotent
    assert out == out.strip() and "  " not in out
    assert unicodedata.is_normalized("NFKC", out)
    assert not any(c in out for c in "\u2010\u2212\uff0d\u2500\u200b\ufeff")


@SETTINGS
@given(s=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1,
                 max_size=20))
def test_nfkc_fullwidth_ascii_round_trip(s: str) -> None:
    """Full-width ASCII (ＡＢＣ１２３) and ASCII are the same key."""
    full = "".join(chr(ord(c) + 0xFEE0) for c in s)
    assert one("nfkc", full)[""] == one("nfkc", s)[""] == s
