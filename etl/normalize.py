"""Value normalizers used by declarative layer specs (``normalize:`` steps).

Municipal ledgers (台帳) spell the same value in many ways: full-width digits, era years,
"123番地の4", "約5.5m", "○". Each normalizer turns one source column into typed columns.

Every normalizer is vectorized the same way: the Python parser runs once per *distinct*
value (``pd.factorize``) and the results are mapped back with an integer ``take``. Ledger
columns have few distinct values, so a million rows cost about as much as a few hundred.

Calling convention (see ``NormalizerDef``)::

    NORMALIZERS[name].func(values: pd.Series, **params) -> pd.Series | pd.DataFrame

Normalizers that can fail to parse return a DataFrame with their output columns plus a
boolean ``"!bad"`` column; the pipeline quarantines those records (reason BAD_VALUE).
Empty/None/NaN input is never bad: it becomes ``pd.NA``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "BAD",
    "DTYPES",
    "NORMALIZERS",
    "NormalizerDef",
    "apply_normalizer",
    "current_fiscal_year",
]

#: Output type name (as used in ``NormalizerDef.outputs``) -> pandas nullable dtype.
DTYPES: dict[str, str] = {"str": "string", "int": "Int64", "float": "Float64", "bool": "boolean"}

BAD = "!bad"

Row = tuple[Any, ...]


@dataclass(frozen=True)
class NormalizerDef:
    """A registered normalizer: the function, its typed outputs and a doc line."""

    func: Callable[..., pd.Series | pd.DataFrame]
    outputs: dict[str, str]  # suffix -> type name in {"str","int","float","bool"}; "" = the field
    doc: str  # one-line bilingual description (Japanese / English), shown in generated docs
    needs_tables: bool = False


# --------------------------------------------------------------------------------------
# Vectorization and scalar helpers
# --------------------------------------------------------------------------------------


def _per_unique(
    values: pd.Series, parse: Callable[[Any], Row], columns: dict[str, str]
) -> pd.DataFrame:
    """Run ``parse`` once per distinct value and broadcast the result rows back.

    ``parse`` returns one tuple per value, aligned with ``columns`` (name -> pandas dtype).
    Missing input (None/NaN/NA/NaT) is parsed once as ``None`` so each normalizer decides
    what "missing" means for it (NA, "unknown", False ...).
    """
    if not isinstance(values, pd.Series):
        values = pd.Series(values)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    rows = [parse(u) for u in uniques]
    rows.append(parse(None))
    take = np.where(codes < 0, len(uniques), codes)
    data: dict[str, Any] = {}
    for i, (col, dtype) in enumerate(columns.items()):
        cells = [r[i] for r in rows]
        if dtype == "bool":
            data[col] = np.asarray(cells, dtype=bool)[take]
        else:
            data[col] = pd.array(cells, dtype=dtype).take(take)
    return pd.DataFrame(data, index=values.index)


def _columns(outputs: dict[str, str], *, bad: bool) -> dict[str, str]:
    cols = {k: DTYPES[v] for k, v in outputs.items()}
    if bad:
        cols[BAD] = "bool"
    return cols


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float | np.floating):
        return math.isnan(v)
    return False


def _to_text(v: Any) -> str | None:
    """Scalar -> text without normalization. Integral floats (Excel's 123.0) print as "123"."""
    if _is_missing(v):
        return None
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        return str(int(f)) if f.is_integer() else repr(f)
    return str(v)


# Hyphen look-alikes found in Japanese data (after NFKC, which already folds U+FF0D, U+FE63).
_HYPHENS = "\u02d7\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2500\u2501\ufe58\ufe63\uff0d"
_HYPHEN_TABLE = str.maketrans(dict.fromkeys(_HYPHENS, "-"))
# 長音 (U+30FC; NFKC turns half-width U+FF70 into it) is a hyphen only between digits/latin:
# "１２３ー４" is "123-4" but "センター" must stay.
_CHOON_RE = re.compile(r"(?<=[0-9A-Za-z])\u30fc(?=[0-9A-Za-z])")
_SPACE_RE = re.compile(r"\s+")
_INVISIBLE_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def _nfkc(v: Any) -> str | None:
    """NFKC + unified hyphens + collapsed whitespace; empty -> None."""
    s = _to_text(v)
    if s is None:
        return None
    s = unicodedata.normalize("NFKC", s).translate(_HYPHEN_TABLE)
    s = _CHOON_RE.sub("-", s)
    s = _INVISIBLE_RE.sub("", s)
    s = _SPACE_RE.sub(" ", s).strip()
    return s or None


def _compact(v: Any) -> str | None:
    """``_nfkc`` without any spaces: for codes where spaces carry no meaning ("H 12")."""
    s = _nfkc(v)
    return s.replace(" ", "") if s else None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating | Decimal) and not _is_missing(v)


# --------------------------------------------------------------------------------------
# Japanese eras
# --------------------------------------------------------------------------------------

# era -> (first Western year, last era year number or None when the era is current)
_ERAS: dict[str, tuple[int, int | None]] = {
    "M": (1868, 45),
    "T": (1912, 15),
    "S": (1926, 64),
    "H": (1989, 31),
    "R": (2019, None),
}
_ERA_ALIASES: dict[str, str] = {
    "明治": "M", "明": "M", "M": "M",
    "大正": "T", "大": "T", "T": "T",
    "昭和": "S", "昭": "S", "S": "S",
    "平成": "H", "平": "H", "H": "H",
    "令和": "R", "令": "R", "R": "R",
}  # fmt: skip
_ERA_PAT = "明治|大正|昭和|平成|令和|[明大昭平令]|[MTSHRmtshr]"
#: First and last day of each era (the last of the current era is open). 明治 counts from
#: 1868-01-01: the change of era was made retroactive to the start of that year.
ERA_DAYS: dict[str, tuple[dt.date, dt.date | None]] = {
    "M": (dt.date(1868, 1, 1), dt.date(1912, 7, 29)),
    "T": (dt.date(1912, 7, 30), dt.date(1926, 12, 24)),
    "S": (dt.date(1926, 12, 25), dt.date(1989, 1, 7)),
    "H": (dt.date(1989, 1, 8), dt.date(2019, 4, 30)),
    "R": (dt.date(2019, 5, 1), None),
}
_ERA_NUM_PAT = r"元|\d{1,2}"


def current_fiscal_year(today: dt.date | None = None) -> int:
    """Japanese fiscal year (年度, starts 1 April) containing ``today``."""
    today = today or dt.date.today()
    return today.year if today.month >= 4 else today.year - 1


def _era_year(era: str, num: str) -> int | None:
    """Western year of era year ``num`` ("元" = 1), or None when outside the era's span."""
    code = _ERA_ALIASES.get(era) or _ERA_ALIASES.get(era.upper())
    if code is None:
        return None
    n = 1 if num == "元" else int(num)
    base, last = _ERAS[code]
    if n < 1 or (last is not None and n > last):
        return None
    return base + n - 1


# --------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------

_TIME_PAT = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DATE_WEST_RE = re.compile(
    r"^(?P<y>\d{4})[/\-.年](?P<m>\d{1,2})[/\-.月](?P<d>\d{1,2})日?" + _TIME_PAT + "$"
)
_DATE_COMPACT_RE = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
_DATE_ERA_RE = re.compile(
    rf"^(?P<era>{_ERA_PAT})\.?(?P<n>{_ERA_NUM_PAT})[/\-.年](?P<m>\d{{1,2}})[/\-.月](?P<d>\d{{1,2}})日?$"
)


def _parse_date(v: Any) -> dt.date | None:
    """Western or era date text / date objects -> ``date``; None when not a valid date."""
    if isinstance(v, dt.datetime | pd.Timestamp):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, np.datetime64):
        return pd.Timestamp(v).date()
    s = _nfkc(v)
    if s is None:
        return None
    s = s.replace("年 ", "年").replace("月 ", "月")
    m = _DATE_WEST_RE.match(s) or _DATE_COMPACT_RE.match(s.replace(" ", ""))
    era = None
    if m:
        year: int | None = int(m["y"])
    else:
        m = _DATE_ERA_RE.match(s.replace(" ", ""))
        if not m:
            return None
        era = _ERA_ALIASES.get(m["era"]) or _ERA_ALIASES.get(m["era"].upper())
        year = _era_year(m["era"], m["n"])
        if year is None:
            return None
    try:
        d = dt.date(year, int(m["m"]), int(m["d"]))
    except ValueError:
        return None
    if era is not None:  # 令和元年4月1日 or H1.1.1 never existed: outside the era's days
        first, last = ERA_DAYS[era]
        if d < first or (last is not None and d > last):
            return None
    return d


def _date_parse(v: Any) -> Row:
    if _is_missing(v) or _nfkc(v) is None:
        return (None, False)
    d = _parse_date(v)
    return (None, True) if d is None else (d.isoformat(), False)


# --------------------------------------------------------------------------------------
# wareki (era year -> fiscal year)
# --------------------------------------------------------------------------------------

_UNKNOWN_RE = re.compile(r"^(?:不明|不詳|未詳|未確認|unknown|n/?a|[?\-ー・*]+)$", re.IGNORECASE)
_APPROX_PREFIX_RE = re.compile(r"^(?:約|およそ|概ね|凡そ|推定|ca\.?|c\.)")
_QUAL_SUFFIXES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("approx", re.compile(r"(?:頃|ころ|ごろ|前後|程度|位|くらい|ぐらい|推定|年代|\?)$")),
    ("before", re.compile(r"(?:以前|より前|迄|まで|以下|前)$")),
    ("after", re.compile(r"(?:以降|以後|より後|から|以上|後)$")),
)
_WAREKI_ERA_RE = re.compile(rf"^(?P<era>{_ERA_PAT})[.\-/・]?(?P<n>{_ERA_NUM_PAT})(?:年度?)?$")
_WAREKI_BARE_RE = re.compile(rf"^(?P<n>{_ERA_NUM_PAT})(?:年度?)?$")
_WAREKI_WEST_RE = re.compile(r"^(?P<y>\d{4})(?:年度?)?$")
_MIN_WESTERN_YEAR = 1000  # "0985" is a typo, not a year


def _wareki_year(s: str, implied_era: str | None) -> int | None:
    """Fiscal year for a qualifier-free compact string, or None when unparseable."""
    if m := _WAREKI_ERA_RE.match(s):
        return _era_year(m["era"], m["n"])
    if m := _WAREKI_WEST_RE.match(s):
        y = int(m["y"])
        return y if y >= _MIN_WESTERN_YEAR else None
    if m := _WAREKI_BARE_RE.match(s):
        return _era_year(implied_era, m["n"]) if implied_era else None
    if d := _parse_date(s):
        # A full date: the fiscal year is what ledgers mean by 年度 (Jan-Mar -> previous).
        return d.year if d.month >= 4 else d.year - 1
    return None


def _make_wareki_parser(implied_era: str | None) -> Callable[[Any], Row]:
    fiscal_now = current_fiscal_year()

    def parse(v: Any) -> Row:
        raw = _to_text(v)
        s = _compact(v)
        if s is None or _UNKNOWN_RE.match(s):
            return (None, "unknown", raw, False)
        qual = "exact"
        body = s
        if m := _APPROX_PREFIX_RE.match(body):
            body, qual = body[m.end() :], "approx"
        for name, rx in _QUAL_SUFFIXES:
            if m := rx.search(body):
                body = body[: m.start()]
                qual = name
                break
        year = _wareki_year(body.upper().replace("年度", "年"), implied_era)
        if year is None or year > fiscal_now:
            return (None, "unknown", raw, True)
        return (year, qual, raw, False)

    return parse


# --------------------------------------------------------------------------------------
# chiban (地番)
# --------------------------------------------------------------------------------------

_CHIBAN_SPECIAL_RE = re.compile(r"^(?:地区外|区域外|別図|不明|不詳|未定|番外|無番|無地番)")
_CHIBAN_SEP_RE = re.compile(r"(?<=\d)(?:番地の?|番の?|の|ノ|之|-)(?=\d)")
_CHIBAN_TAIL_RE = re.compile(r"(?<=\d)(?:番地|番)$")
_CHIBAN_RE = re.compile(
    r"^(?P<prefix>[\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff々〆]{0,10})(?P<nums>\d+(?:-\d+)*)$"
)


def _chiban_parse(v: Any) -> Row:
    raw = _to_text(v)
    text = _nfkc(v)
    if text is None:
        return (None, None, None, raw, False)
    s = text.replace(" ", "")
    if _CHIBAN_SPECIAL_RE.match(s):
        return (text, None, None, raw, False)
    s = _CHIBAN_TAIL_RE.sub("", _CHIBAN_SEP_RE.sub("-", s))
    m = _CHIBAN_RE.match(s)
    if not m:
        return (text, None, None, raw, True)
    parts = [int(p) for p in m["nums"].split("-")]
    norm = m["prefix"] + "-".join(str(p) for p in parts)
    branch = parts[1] if len(parts) > 1 else None
    return (norm, parts[0], branch, raw, False)


# --------------------------------------------------------------------------------------
# depth_range (浸水深 class labels)
# --------------------------------------------------------------------------------------

_NUM_UNIT = r"(\d+(?:\.\d+)?|\.\d+)(cm|m|メートル|センチ)?"
_LOWER = r"(?:以上|超え?|を超える|より上)"
_UPPER = r"(?:未満|以下|まで)"
_RANGE_SEP = r"(?:~|〜|-|から)"
_DEPTH_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"^{_NUM_UNIT}{_LOWER}{_NUM_UNIT}{_UPPER}$"), "ab"),
    (re.compile(rf"^{_NUM_UNIT}{_RANGE_SEP}{_NUM_UNIT}{_UPPER}?$"), "ab"),
    (re.compile(rf"^{_NUM_UNIT}(?:{_LOWER}|{_RANGE_SEP})$"), "a"),
    (re.compile(rf"^{_NUM_UNIT}{_UPPER}$"), "b"),
    (re.compile(rf"^{_RANGE_SEP}{_NUM_UNIT}$"), "b"),
)
_PAREN_RE = re.compile(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】|「[^」]*」")
#: MLIT depth-rank lower bounds (m): rank 1 <0.5, 2 0.5-3, 3 3-5, 4 5-10, 5 10-20, 6 >=20.
DEPTH_RANK_BOUNDS: tuple[float, ...] = (0.5, 3.0, 5.0, 10.0, 20.0)


def _metres(num: str, unit: str | None, fallback_unit: str | None) -> float:
    u = unit or fallback_unit or "m"
    f = float(num)
    return round(f / 100.0 if u in ("cm", "センチ") else f, 6)


def _depth_rank(lo: float | None, hi: float | None) -> int:
    if lo is not None:
        return 1 + sum(lo >= b for b in DEPTH_RANK_BOUNDS)
    assert hi is not None
    # "X未満": the deepest value is just below X.
    return 1 + sum(hi > b for b in DEPTH_RANK_BOUNDS)


def _depth_parse(v: Any) -> Row:
    label = _nfkc(v)
    if label is None:
        return (None, None, None, None, False)
    s = _PAREN_RE.sub("", label).replace(" ", "").lower()
    for rx, shape in _DEPTH_PATTERNS:
        m = rx.match(s)
        if not m:
            continue
        g = m.groups()
        lo = hi = None
        if shape == "ab":
            lo, hi = _metres(g[0], g[1], g[3]), _metres(g[2], g[3], g[1])
            if lo >= hi:
                break
        elif shape == "a":
            lo = _metres(g[0], g[1], None)
        else:
            hi = _metres(g[0], g[1], None)
            if hi <= 0:
                break
        return (label, lo, hi, _depth_rank(lo, hi), False)
    return (label, None, None, None, True)


# --------------------------------------------------------------------------------------
# number / int
# --------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"(?<![\d.,])(-?)(\d+(?:,\d+)*(?:\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_THOUSANDS_RE = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d*)?$")


def _number_text(v: Any) -> tuple[str | None, bool]:
    """First number in ``v`` as plain text ("-1200.5"), and whether ``v`` was bad."""
    s = _nfkc(v)
    if s is None:
        return None, False
    m = _NUMBER_RE.search(s)
    if not m:
        return None, True
    digits = m[2]
    if "," in digits:
        if not _THOUSANDS_RE.match(digits):
            return None, True  # "1,20": a list or a decimal comma; refuse to guess
        digits = digits.replace(",", "")
    # A minus sign only counts when it is not a joiner like "H-5" / "10-20".
    sign = "-" if m[1] and (m.start() == 0 or not s[m.start() - 1].isalnum()) else ""
    return sign + digits + (m[3] or ""), False


def _is_ascii_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _number_parse(v: Any) -> Row:
    if _is_number(v):
        f = float(v)
        return (f, False) if math.isfinite(f) else (None, True)
    text, bad = _number_text(v)
    if text is None:
        return (None, bad)
    f = float(text)
    return (f, False) if math.isfinite(f) else (None, True)  # "1e400" is not a number


def _int_parse(v: Any) -> Row:
    if isinstance(v, bool | np.bool_):
        return (int(v), False)
    if isinstance(v, int | np.integer):
        return (int(v), False) if abs(int(v)) <= _INT64_MAX else (None, True)
    if _is_number(v):
        f = float(v)
        ok = math.isfinite(f) and f.is_integer() and abs(f) <= _INT64_MAX
        return (int(f), False) if ok else (None, True)
    text, bad = _number_text(v)
    if text is None:
        return (None, bad)
    if "e" in text.lower():
        f = float(text)
        if not math.isfinite(f) or not f.is_integer() or abs(f) > _INT64_MAX:
            return (None, True)
        return (int(f), False)
    whole, _, frac = text.partition(".")
    if frac.strip("0"):
        return (None, True)  # "5.5" is not an integer; rounding would hide a data error
    value = int(whole) if whole not in ("", "-") else 0
    if abs(value) > _INT64_MAX:
        return (None, True)  # would wrap in an int64 column
    return (value, False)


_INT64_MAX = 2**63 - 1


# --------------------------------------------------------------------------------------
# quantity (a number with a unit and a qualifier: "3.0m", "約2m", "0.5ｍ未満")
# --------------------------------------------------------------------------------------

#: length units and their size in metres (after NFKC and lower-casing)
LENGTH_UNITS: dict[str, float] = {"km": 1000.0, "m": 1.0, "メートル": 1.0, "米": 1.0,
                                  "cm": 0.01, "センチ": 0.01, "mm": 0.001, "ミリ": 0.001}
_Q_PREFIX = re.compile(r"^(?:約|およそ|概ね|凡そ|推定|ca\.?|c\.|±|\+-)")
_Q_SUFFIX: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("approx", re.compile(r"(?:程度|前後|位|くらい|ぐらい|内外|ほど)$")),
    ("below", re.compile(r"(?:未満|以下|まで|迄)$")),
    ("above", re.compile(r"(?:以上|超え?|を超える|より上)$")),
)
_Q_BODY = re.compile(r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?P<unit>[^\d]*)$")


def _make_quantity_parser(unit: str, approx: str, bounds: str) -> Callable[[Any], Row]:
    """Parser of one value for :func:`quantity` (``unit`` is the field's unit)."""
    target = LENGTH_UNITS.get(unit.lower())

    def parse(v: Any) -> Row:
        if _is_number(v):
            f = float(v)
            return (f, "exact", False) if math.isfinite(f) else (None, None, True)
        s = _compact(v)
        if s is None:
            return (None, None, False)
        s = s.lower()
        qual = "exact"
        if m := _Q_PREFIX.match(s):
            s, qual = s[m.end():], "approx"
        for name, rx in _Q_SUFFIX:
            if m := rx.search(s):
                s, qual = s[:m.start()], name
                break
        m = _Q_BODY.match(s.replace(",", ""))
        if not m:
            return (None, None, True)
        f = float(m["num"])
        u = m["unit"]
        if u and u != unit.lower():
            if target is None or u not in LENGTH_UNITS:
                return (None, None, True)  # an unknown or unconvertible unit
            f = f * LENGTH_UNITS[u] / target
        if not math.isfinite(f):
            return (None, None, True)
        if (qual == "approx" and approx == "bad") or (qual in ("below", "above")
                                                      and bounds == "bad"):
            return (None, qual, True)
        return (round(f, 9), qual, False)

    return parse


def quantity(values: pd.Series, unit: str = "m", approx: str = "keep",
             bounds: str = "bad") -> pd.DataFrame:
    """A measured value with its unit and qualifier -> the number in ``unit`` plus ``_qual``.

    "3.0m", "３００ｃｍ" and "3" (the field's unit) give 3.0; a length in another unit is
    converted (cm, mm, km); any other unit is bad. The per-field policy decides the rest:
    ``approx`` ("約2m", "2m程度": ``keep`` the value with ``_qual`` "approx", or ``bad``) and
    ``bounds`` ("0.5ｍ未満", "3m以上": ``bad`` by default, since a bound is not a value, or
    ``keep`` the bound with ``_qual`` "below"/"above").
    """
    if approx not in ("keep", "bad") or bounds not in ("keep", "bad"):
        raise ValueError("quantity: approx and bounds take 'keep' or 'bad'")
    return _per_unique(values, _make_quantity_parser(str(unit), approx, bounds),
                       _columns(_QUANTITY_OUT, bad=True))


# --------------------------------------------------------------------------------------
# flag
# --------------------------------------------------------------------------------------

_TRUTHY = frozenset({"1", "○", "〇", "◯", "●", "◎", "有", "有り", "あり", "true", "y", "yes"})
_FALSY = frozenset({"0", "×", "✕", "✖", "無", "無し", "なし", "false", "n", "no"})


def _flag_parse(v: Any) -> Row:
    if _is_missing(v):
        return (False, False)
    if isinstance(v, bool | np.bool_):
        return (bool(v), False)
    if _is_number(v):
        f = float(v)
        return (f == 1.0, False) if f in (0.0, 1.0) else (False, True)
    s = _nfkc(v)
    if s is None:
        return (False, False)
    s = s.lower()
    if s in _TRUTHY:
        return (True, False)
    if s in _FALSY:
        return (False, False)
    return (False, True)


# --------------------------------------------------------------------------------------
# Normalizer functions (the registry's ``func``)
# --------------------------------------------------------------------------------------

_STR = {"": "string"}


def _single(values: pd.Series, parse: Callable[[Any], Any]) -> pd.Series:
    return _per_unique(values, lambda v: (parse(v),), _STR)[""]


def nfkc(values: pd.Series) -> pd.Series:
    """NFKC, one hyphen, one space: makes "１２３ー４" and "123-4" the same key."""
    return _single(values, _nfkc)


def upper(values: pd.Series) -> pd.Series:
    """Upper-case after strip, for case-insensitive codes ("ab-1" = "AB-1")."""

    def parse(v: Any) -> str | None:
        s = _to_text(v)
        s = s.strip().upper() if s is not None else None
        return s or None

    return _single(values, parse)


def number(values: pd.Series) -> pd.DataFrame:
    """First number in free text ("W=5.5m", "約6.0", "1,200"); text without one is bad."""
    return _per_unique(values, _number_parse, _columns({"": "float"}, bad=True))


def integer(values: pd.Series) -> pd.DataFrame:
    """Like ``number`` but integral; "5.5" is bad instead of silently rounded."""
    return _per_unique(values, _int_parse, _columns({"": "int"}, bad=True))


def wareki(values: pd.Series, implied_era: str | None = None) -> pd.DataFrame:
    """Era year ("S55", "平成元年度", "S40頃") -> Western fiscal year + qualifier + raw text.

    ``implied_era`` (e.g. "S") lets a ledger that writes bare "55" mean 昭和55年; without it
    a bare 1-2 digit number is ambiguous and reported bad. Years after the current fiscal
    year or outside their era (H40, T20) are bad.
    """
    if implied_era is not None and _era_year(str(implied_era), "元") is None:
        raise ValueError(f"wareki: unknown implied_era {implied_era!r}; use one of M/T/S/H/R")
    parse = _make_wareki_parser(None if implied_era is None else str(implied_era))
    return _per_unique(values, parse, _columns(_WAREKI_OUT, bad=True))


def chiban(values: pd.Series) -> pd.DataFrame:
    """地番 variants ("123番地の4", "１２３ー４", "甲123") -> "123-4" plus main/branch numbers."""
    return _per_unique(values, _chiban_parse, _columns(_CHIBAN_OUT, bad=True))


def depth_range(values: pd.Series) -> pd.DataFrame:
    """Depth class label ("0.5m以上3.0m未満") -> bounds in metres and the MLIT rank 1-6."""
    return _per_unique(values, _depth_parse, _columns(_DEPTH_OUT, bad=True))


def flag(values: pd.Series) -> pd.DataFrame:
    """Ledger ticks ("○", "有", "1", "×", "") -> boolean; missing means False."""
    return _per_unique(values, _flag_parse, _columns({"": "bool"}, bad=True))


_MISSING: Any = object()


def _key(v: Any) -> str | None:
    s = _to_text(v)
    return None if s is None else s.strip()


def map_values(
    series: pd.Series, /, values: Mapping[Any, Any], default: Any = _MISSING
) -> pd.Series:
    """Replace whole values via a spec-given dict; unmapped pass through unless ``default``.

    The Series is positional-only because the spec parameter is itself called ``values``.
    """
    table = {_key(k): (None if _is_missing(v) else _to_text(v)) for k, v in values.items()}

    def parse(v: Any) -> str | None:
        k = _key(v)
        if k is None:
            return None
        if k in table:
            return table[k]
        if default is _MISSING:
            return _to_text(v)
        return None if _is_missing(default) else _to_text(default)

    return _single(series, parse)


def lookup(values: pd.Series, table: str, tables: Mapping[str, Mapping[str, str]]) -> pd.Series:
    """Map through a loaded lookup table; unknown codes pass through for the code-list check."""
    if table not in tables:
        raise KeyError(f"lookup: table {table!r} is not loaded (known: {sorted(tables)})")
    mapping = {_key(k): v for k, v in tables[table].items()}

    def parse(v: Any) -> str | None:
        k = _key(v)
        if not k:
            return None
        return _to_text(mapping[k]) if k in mapping else _to_text(v)

    return _single(values, parse)


def strip_unit(values: pd.Series, unit: str) -> pd.Series:
    """Drop one trailing unit ("5.5ｍｍ" -> "5.5"), compared after NFKC and case-folding."""
    u = (_nfkc(unit) or "").casefold()

    def parse(v: Any) -> str | None:
        s = _nfkc(v)
        if s is None:
            return None
        if u and s.casefold().endswith(u):
            s = s[: len(s) - len(u)].rstrip()
        return s or None

    return _single(values, parse)


def zfill(values: pd.Series, width: int) -> pd.Series:
    """Left-pad digit strings ("5" -> "005") so route numbers keep their leading zeros."""

    def parse(v: Any) -> str | None:
        s = _to_text(v)
        if s is None or not s.strip():
            return None
        s = s.strip()
        digits = unicodedata.normalize("NFKC", s)
        return digits.zfill(int(width)) if digits.isascii() and digits.isdigit() else s

    return _single(values, parse)


def date(values: pd.Series) -> pd.DataFrame:
    """Western or era dates ("H12.4.1", "平成12年4月1日", "2000/04/01") -> "YYYY-MM-DD"."""
    return _per_unique(values, _date_parse, _columns({"": "str"}, bad=True))


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------

_WAREKI_OUT = {"": "int", "_qual": "str", "_raw": "str"}
_CHIBAN_OUT = {"": "str", "_main": "int", "_branch": "int", "_raw": "str"}
_DEPTH_OUT = {"": "str", "_min_m": "float", "_max_m": "float", "_rank": "int"}
_QUANTITY_OUT = {"": "float", "_qual": "str"}

NORMALIZERS: dict[str, NormalizerDef] = {
    "nfkc": NormalizerDef(
        nfkc,
        {"": "str"},
        "NFKC正規化・ハイフン統一・空白整理 / NFKC, unify hyphens, collapse spaces",
    ),
    "upper": NormalizerDef(upper, {"": "str"}, "前後空白除去して大文字化 / strip and upper-case"),
    "number": NormalizerDef(
        number, {"": "float"}, "文字列から数値を抽出（例: 約5.5m） / extract a number from text"
    ),
    "int": NormalizerDef(
        integer, {"": "int"}, "整数を抽出（小数は不正） / extract an integer (decimals are bad)"
    ),
    "wareki": NormalizerDef(
        wareki,
        _WAREKI_OUT,
        "和暦・西暦を西暦年度に変換（頃/以前/以降も判定） / era or Western year to fiscal year",
    ),
    "chiban": NormalizerDef(
        chiban, _CHIBAN_OUT, "地番を「本番-枝番」に統一 / land parcel number to main-branch form"
    ),
    "depth_range": NormalizerDef(
        depth_range,
        _DEPTH_OUT,
        "浸水深区分を上下限とランクに変換 / depth class label to bounds (m) and MLIT rank",
    ),
    "flag": NormalizerDef(
        flag, {"": "bool"}, "○/有/1 などを真偽値に変換 / ledger tick marks to boolean"
    ),
    "quantity": NormalizerDef(
        quantity,
        _QUANTITY_OUT,
        "単位・約・未満つきの数値を単位換算し区分つきで / number with unit and 約/未満 by policy",
    ),
    "map": NormalizerDef(
        map_values, {"": "str"}, "値の置換表で変換 / replace values via a given mapping"
    ),
    "lookup": NormalizerDef(
        lookup,
        {"": "str"},
        "参照表（コード表）で変換 / translate via a loaded lookup table",
        needs_tables=True,
    ),
    "strip_unit": NormalizerDef(
        strip_unit, {"": "str"}, "末尾の単位を除去（例: 5ｍｍ） / remove a trailing unit"
    ),
    "zfill": NormalizerDef(
        zfill, {"": "str"}, "数字を指定桁までゼロ埋め / left-pad digit strings with zeros"
    ),
    "date": NormalizerDef(
        date, {"": "str"}, "和暦・西暦の日付をISO形式に / Western or era date to ISO YYYY-MM-DD"
    ),
}


def apply_normalizer(
    name: str,
    values: pd.Series,
    params: dict[str, Any] | None = None,
    tables: dict[str, dict[str, str]] | None = None,
) -> pd.DataFrame:
    """Run one normalizer and return its output columns plus a boolean ``"!bad"`` column.

    The pipeline always gets the same shape back, whatever the normalizer returned.
    """
    defn = NORMALIZERS[name]
    kwargs = dict(params or {})
    if defn.needs_tables:
        kwargs["tables"] = tables or {}
    out = defn.func(values, **kwargs)
    if isinstance(out, pd.Series):
        out = out.to_frame(name="")
    frame = pd.DataFrame(index=values.index)
    for suffix, typ in defn.outputs.items():
        frame[suffix] = out[suffix].astype(DTYPES[typ])
    bad = out[BAD] if BAD in out.columns else False
    frame[BAD] = pd.Series(bad, index=values.index).fillna(False).astype(bool)
    return frame
