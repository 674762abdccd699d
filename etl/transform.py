"""Transform stage: raw source columns -> the unified schema, driven only by the layer spec.

Per field: take ``from`` (or ``const``), run the normalizer chain, null the sentinels, cast to the
declared type, map through the code list, check the range and ``required``. Nothing is dropped
here: every problem becomes an ``Issue`` (mask + reason + per-record detail) that the pipeline
turns into quarantine rows or quality flags.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from config.models import CodeList, FieldSpec, LayerSpec
from etl.normalize import apply_normalizer

PANDAS_TYPES = {"str": "string", "int": "Int64", "float": "Float64", "bool": "boolean",
                "date": "string"}


@dataclass
class Issue:
    """Records (``mask``) that break a rule. ``action`` is quarantine | null | warn."""

    mask: np.ndarray
    reason: str
    detail: pd.Series  # text per record (only masked rows are read)
    action: str = "quarantine"


@dataclass
class FieldResult:
    columns: pd.DataFrame
    issues: list[Issue] = field(default_factory=list)
    flags: pd.Series | None = None  # ";"-joined quality flags per record
    unmapped: dict[str, Counter] = field(default_factory=dict)
    sentinels: Counter = field(default_factory=Counter)


def _detail(field_name: str, values: pd.Series) -> pd.Series:
    return field_name + "=" + values.astype("string").fillna("<null>").str.slice(0, 60)


def _cast(values: pd.Series, typ: str) -> tuple[pd.Series, np.ndarray]:
    """Cast to the declared type; returns the cast values and a mask of unparseable ones."""
    notna = values.notna().to_numpy()
    if typ in ("int", "float"):
        if values.dtype.kind in "iuf" or str(values.dtype) in ("Int64", "Float64"):
            num = values.astype("Float64")
        else:
            txt = values.astype("string").str.strip()
            txt = txt.map(lambda s: unicodedata.normalize("NFKC", s) if isinstance(s, str) else s)
            num = pd.to_numeric(txt.str.replace(",", "", regex=False), errors="coerce")
            num = num.astype("Float64")
        bad = notna & num.isna().to_numpy()
        if typ == "int":
            arr = num.to_numpy(dtype=float, na_value=np.nan)
            frac = np.isfinite(arr) & (np.abs(arr - np.round(arr)) > 1e-9)
            bad |= frac
            num = num.mask(frac).round().astype("Int64")
        return num, bad
    if typ == "bool":
        if str(values.dtype) == "boolean" or values.dtype.kind == "b":
            return values.astype("boolean"), np.zeros(len(values), dtype=bool)
        norm = apply_normalizer("flag", values, {})
        return norm[""].astype("boolean"), norm["!bad"].to_numpy(dtype=bool)
    if typ == "date":
        if values.dtype.kind == "M":
            return values.dt.strftime("%Y-%m-%d").astype("string"), np.zeros(len(values), bool)
        norm = apply_normalizer("date", values, {})
        return norm[""].astype("string"), norm["!bad"].to_numpy(dtype=bool)
    out = values.astype("string").str.strip()
    out = out.mask(out == "")
    return out, np.zeros(len(values), dtype=bool)


def _apply_sentinels(values: pd.Series, sentinels: list) -> np.ndarray:
    if not sentinels:
        return np.zeros(len(values), dtype=bool)
    num = pd.to_numeric(values, errors="coerce") if values.dtype.kind not in "iuf" else values
    nums = [float(s) for s in sentinels if isinstance(s, int | float)]
    strs = [str(s) for s in sentinels]
    hit = np.zeros(len(values), dtype=bool)
    if nums:
        arr = pd.Series(num).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        hit |= np.isin(arr, nums)
    hit |= values.astype("string").str.strip().isin(strs).fillna(False).to_numpy(dtype=bool)
    return hit


def map_codes(values: pd.Series, cl: CodeList) -> tuple[pd.Series, np.ndarray]:
    """Raw spellings -> canonical codes. Returns mapped values and a mask of unknown codes."""
    aliases = cl.alias_map()
    folded = {unicodedata.normalize("NFKC", k).strip().upper(): v for k, v in aliases.items()}
    txt = values.astype("string")
    uniq = txt.dropna().unique()
    lut = {}
    for u in uniq:
        key = unicodedata.normalize("NFKC", str(u)).strip().upper()
        lut[u] = aliases.get(str(u), folded.get(key))
    mapped = txt.map(lut).astype("string")
    unknown = (txt.notna() & mapped.isna()).to_numpy(dtype=bool)
    return mapped, unknown


def apply_fields(spec: LayerSpec, raw: pd.DataFrame, *, tables: dict[str, dict[str, str]],
                 codelists: dict[str, CodeList]) -> FieldResult:
    """Produce every target column of ``spec`` from the concatenated raw frame."""
    n = len(raw)
    cols: dict[str, pd.Series] = {}
    issues: list[Issue] = []
    flags = pd.Series([""] * n, index=raw.index, dtype="string")
    unmapped: dict[str, Counter] = {}
    sentinel_counts: Counter = Counter()

    def flag(mask: np.ndarray, text: str) -> None:
        nonlocal flags
        if mask.any():
            flags = flags.mask(mask, flags + text + ";")

    for name, fs in spec.fields.items():
        values = _source_values(fs, raw)
        original = values
        outputs: dict[str, pd.Series] = {}
        bad = np.zeros(n, dtype=bool)
        for step in fs.normalize:
            res = _normalize(step.name, values, dict(step.params), tables)
            bad |= res["!bad"].to_numpy(dtype=bool)
            for suffix in res.columns:
                if suffix not in ("", "!bad"):
                    outputs.setdefault(suffix, res[suffix])
            values = res[""]
        if "_raw" in outputs:  # the raw value as exported, whatever the chain did before
            outputs["_raw"] = original.astype("string")
        sent = _apply_sentinels(values, fs.sentinels)
        if sent.any():
            values = values.mask(sent)
            flag(sent, f"sentinel:{name}")
            sentinel_counts[name] += int(sent.sum())
        values, cast_bad = _cast(values, fs.type)
        bad |= cast_bad
        if bad.any():
            issues.append(Issue(bad, "BAD_VALUE", _detail(name, original)))
        if fs.codelist:
            mapped, unknown = map_codes(values, codelists[fs.codelist])
            if unknown.any():
                unmapped[name] = Counter(values[unknown].astype(str).tolist())
                if fs.on_unknown_code == "quarantine":
                    issues.append(Issue(unknown, "UNKNOWN_CODE", _detail(name, original)))
                elif fs.on_unknown_code in ("null", "warn"):
                    flag(unknown, f"unknown_code:{name}")
                if fs.on_unknown_code == "null":
                    mapped = mapped.mask(unknown)
                elif fs.on_unknown_code in ("warn", "keep"):
                    mapped = mapped.mask(unknown, values.astype("string"))
            values = mapped
        if fs.range is not None and fs.type in ("int", "float"):
            lo, hi = fs.range
            arr = values.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            oor = np.isfinite(arr) & ((arr < lo) | (arr > hi))
            if oor.any():
                if fs.on_out_of_range == "quarantine":
                    issues.append(Issue(oor, "OUT_OF_RANGE", _detail(name, original)))
                elif fs.on_out_of_range in ("null", "warn"):
                    flag(oor, f"out_of_range:{name}")
                    if fs.on_out_of_range == "null":
                        values = values.mask(oor)
        if fs.required:
            miss = values.isna().to_numpy(dtype=bool) & ~bad
            if miss.any():
                issues.append(Issue(miss, "MISSING_REQUIRED", _detail(name, original)))
        cols[name] = values.astype(PANDAS_TYPES[fs.type]) if fs.type != "bool" else values
        for suffix, s in outputs.items():
            cols[name + suffix] = s
    frame = pd.DataFrame(cols, index=raw.index)
    return FieldResult(frame, issues, flags, unmapped, sentinel_counts)


# Text that ``nfkc`` returns unchanged: printable ASCII words joined by single spaces. NFKC
# leaves ASCII alone, the hyphen/長音/invisible-character rules only touch non-ASCII, and there is
# no whitespace left to collapse or strip (tests/test_transform_fastpath.py pins this).
_NFKC_FIXED_RE = r"^[!-~]+(?: [!-~]+)*$"
_FAST_MIN_ROWS = 2000


def _normalize(name: str, values: pd.Series, params: dict,
               tables: dict[str, dict[str, str]]) -> pd.DataFrame:
    """``apply_normalizer``, skipping the per-value Python work where the result is known.

    Ids and codes (pipe, manhole, parcel ids ...) are already canonical ASCII, distinct per row,
    so ``nfkc`` spent most of the normalize stage returning them unchanged (~1 M Python calls
    per 1 M records). Those values are now found with one vectorized Arrow regex; only the
    rest goes through the normalizer. Same output, same dtypes.
    """
    if (name != "nfkc" or params or len(values) < _FAST_MIN_ROWS
            or not isinstance(values.dtype, pd.StringDtype)):
        return apply_normalizer(name, values, params, tables)
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values.array, type=pa.large_string(), from_pandas=True)
    fixed = pc.fill_null(pc.match_substring_regex(arr, _NFKC_FIXED_RE), False).to_numpy(
        zero_copy_only=False)
    if not fixed.any():
        return apply_normalizer(name, values, params, tables)
    rest = ~fixed
    col = values.astype("string")
    if rest.any():
        sub = apply_normalizer(name, values[rest], params, tables)
        col = col.mask(rest, sub[""])
    return pd.DataFrame({"": col, "!bad": np.zeros(len(values), dtype=bool)}, index=values.index)


def _source_values(fs: FieldSpec, raw: pd.DataFrame) -> pd.Series:
    if fs.from_ is None:
        return pd.Series([fs.const] * len(raw), index=raw.index)
    return raw[fs.from_]


def missing_columns(spec: LayerSpec, columns: list[str]) -> list[str]:
    """``from`` columns a source lacks (after rename/constants): reported before any work."""
    have = set(columns)
    return sorted({f.from_ for f in spec.fields.values() if f.from_ and f.from_ not in have})
