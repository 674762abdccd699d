"""Transform stage: raw source columns -> the unified schema, driven only by the layer spec.

Per field: take ``from`` (or ``const``), run the normalizer chain, null the sentinels, cast to the
declared type, map through the code list, check the range and ``required``; then the fields
computed from others (``compose``/``generate``, e.g. ids). Nothing is dropped here: every problem
goes to the layer's :class:`etl.policy.Ledger` with the field's own action (quarantine, null,
warn, keep), which records the quarantine reason, the flag and the report row.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from config.models import CodeList, FieldSpec, LayerSpec
from etl.normalize import apply_normalizer
from etl.policy import Ledger, Problem

PANDAS_TYPES = {"str": "string", "int": "Int64", "float": "Float64", "bool": "boolean",
                "date": "string"}
INT64_MAX = 2**63 - 1
_EXACT = 2.0**53  # floats represent every integer below this exactly
_INT_TEXT = re.compile(r"^[+-]?\d+$")


@dataclass
class FieldResult:
    columns: pd.DataFrame
    unmapped: dict[str, Counter] = field(default_factory=dict)
    sentinels: Counter = field(default_factory=Counter)


def _detail(field_name: str, values: pd.Series, mask: np.ndarray) -> np.ndarray:
    """``field=value`` texts of the masked records (the raw value, cut at 60 characters)."""
    if isinstance(mask, np.ndarray) and not mask.any():
        return np.empty(0, dtype=object)
    sub = values[mask] if isinstance(mask, np.ndarray) else values
    txt = sub.astype("string").fillna("<null>").str.slice(0, 60)
    return (field_name + "=" + txt).to_numpy(dtype=object)


def _text_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Text -> (cleaned text, float): NFKC (full-width digits), thousands commas removed."""
    txt = values.astype("string").str.strip()
    txt = txt.map(lambda s: unicodedata.normalize("NFKC", s) if isinstance(s, str) else s)
    txt = txt.astype("string").str.replace(",", "", regex=False)
    return txt, pd.to_numeric(txt, errors="coerce").astype("Float64")


def _to_int(values: pd.Series, notna: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """Integers that fit int64, read exactly (a 17-digit id is not rounded through a float)."""
    n = len(values)
    if values.dtype.kind in "iu" or str(values.dtype) in ("Int64", "UInt64"):
        return values.astype("Int64"), np.zeros(n, dtype=bool)
    if values.dtype.kind == "f" or str(values.dtype) == "Float64":
        txt, arr = None, values.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    else:
        txt, num = _text_numbers(values)
        arr = num.to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(arr)
    bad = notna & ~finite
    risky = finite & (np.abs(arr) >= _EXACT)
    frac = finite & ~risky & (np.abs(arr - np.round(arr)) > 1e-9)
    bad |= frac
    out = pd.array([pd.NA] * n, dtype="Int64")
    ok = finite & ~risky & ~frac
    if ok.any():
        out[ok] = np.round(arr[ok]).astype(np.int64)
    for i in np.flatnonzero(risky):
        t = txt.iloc[i] if txt is not None else None
        v = int(t) if isinstance(t, str) and _INT_TEXT.match(t) else int(arr[i])
        if abs(v) > INT64_MAX:
            bad[i] = True
        else:
            out[i] = v
    return pd.Series(out, index=values.index), bad


def _cast(values: pd.Series, typ: str) -> tuple[pd.Series, np.ndarray]:
    """Cast to the declared type; returns the cast values and a mask of unparseable ones.

    Numbers must be finite and integers must fit int64: ``1e400`` or a 26-digit number is a bad
    value, never infinity or a wrapped integer.
    """
    if values.dtype.kind == "O" or isinstance(values.dtype, pd.StringDtype):
        # blank text ("" or spaces, as GeoJSON and Excel exports write a missing value) is a
        # missing value of any type, never a bad one
        blank = values.astype("string").str.strip() == ""
        if blank.any():
            values = values.mask(blank.fillna(False))
    notna = values.notna().to_numpy()
    n = len(values)
    if typ == "int":
        return _to_int(values, notna)
    if typ == "float":
        if values.dtype.kind in "iuf" or str(values.dtype) in ("Int64", "Float64"):
            num = values.astype("Float64")
        else:
            num = _text_numbers(values)[1]
        arr = num.to_numpy(dtype=float, na_value=np.nan)
        bad = notna & ~np.isfinite(arr)
        return num.mask(pd.Series(bad, index=values.index)), bad
    if typ == "bool":
        if str(values.dtype) == "boolean" or values.dtype.kind == "b":
            return values.astype("boolean"), np.zeros(n, dtype=bool)
        norm = apply_normalizer("flag", values, {})
        return norm[""].astype("boolean"), norm["!bad"].to_numpy(dtype=bool)
    if typ == "date":
        if values.dtype.kind == "M":
            return values.dt.strftime("%Y-%m-%d").astype("string"), np.zeros(n, bool)
        norm = apply_normalizer("date", values, {})
        return norm[""].astype("string"), norm["!bad"].to_numpy(dtype=bool)
    out = values.astype("string").str.strip()
    out = out.mask(out == "")
    return out, np.zeros(n, dtype=bool)


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
                 codelists: dict[str, CodeList], ledger: Ledger,
                 source_names: list[str] | None = None,
                 truncated: dict[str, np.ndarray] | None = None) -> FieldResult:
    """Produce every target column of ``spec`` from the concatenated raw frame.

    ``truncated``: per raw column, the records whose DBF text fills the field width.
    """
    n = len(raw)
    cols: dict[str, pd.Series] = {}
    unmapped: dict[str, Counter] = {}
    sentinel_counts: Counter = Counter()
    truncated = truncated or {}
    order: dict[str, list[str]] = {}

    for name, fs in spec.fields.items():
        if fs.derived_from:
            continue
        values = _source_values(fs, raw)
        original = values
        # every rule is applied even when it hits nothing: each batch of a streamed layer
        # then makes the same ledger calls (see Ledger.merge_rows)
        if fs.from_ in truncated:
            m = truncated[fs.from_]
            values = ledger.apply(Problem(m, "TRUNCATED_TEXT", fs.on_truncated,
                                          _detail(name, original, m), name), values)
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
        values = ledger.apply(Problem(sent, "SENTINEL", "null", _detail(name, original, sent),
                                      name), values)
        if sent.any():
            sentinel_counts[name] += int(sent.sum())
        values, cast_bad = _cast(values, fs.type)
        bad |= cast_bad
        values = ledger.apply(Problem(bad, "BAD_VALUE", fs.on_bad_value,
                                      _detail(name, original, bad), name), values)
        if fs.codelist:
            mapped, unknown = map_codes(values, codelists[fs.codelist])
            if unknown.any():
                unmapped[name] = Counter(values[unknown].astype(str).tolist())
                if fs.on_unknown_code in ("warn", "keep"):  # the value as recorded stays
                    mapped = mapped.mask(pd.Series(unknown, index=mapped.index),
                                         values.astype("string"))
            mapped = ledger.apply(Problem(unknown, "UNKNOWN_CODE", fs.on_unknown_code,
                                          _detail(name, original, unknown), name), mapped)
            values = mapped
        if fs.range is not None and fs.type in ("int", "float"):
            lo, hi = fs.range
            arr = values.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            oor = np.isfinite(arr) & ((arr < lo) | (arr > hi))
            values = ledger.apply(Problem(oor, "OUT_OF_RANGE", fs.on_out_of_range,
                                          _detail(name, original, oor), name), values)
        if fs.required:
            miss = values.isna().to_numpy(dtype=bool) & ~(bad & (fs.on_bad_value == "quarantine"))
            ledger.apply(Problem(miss, "MISSING_REQUIRED", "quarantine",
                                 _detail(name, original, miss), name))
        cols[name] = values.astype(PANDAS_TYPES[fs.type]) if fs.type != "bool" else values
        order[name] = [name]
        for suffix, s in outputs.items():
            cols[name + suffix] = s
            order[name].append(name + suffix)
    for name, fs in spec.fields.items():
        if fs.derived_from:
            cols[name] = _derived(name, fs, cols, raw, source_names, ledger)
            order[name] = [name]
    names = [c for f in spec.fields for c in order[f]]  # spec order, outputs after their field
    return FieldResult(pd.DataFrame({c: cols[c] for c in names}, index=raw.index), unmapped,
                       sentinel_counts)


def _derived(name: str, fs: FieldSpec, cols: dict[str, pd.Series], raw: pd.DataFrame,
             source_names: list[str] | None, ledger: Ledger) -> pd.Series:
    """A composite (``compose``) or generated (``generate``) value from other target fields.

    Generated ids are ``<source>-<16 hex>``: a hash of the source's name and the key values, so
    the same record gets the same id in every run. Missing parts give a missing value.
    """
    parts = [cols[p].astype("string") for p in fs.derived_from]
    missing = np.zeros(len(raw), dtype=bool)
    for p in parts:
        missing |= p.isna().to_numpy()
    if fs.compose is not None:
        joined = parts[0].fillna("")
        for p in parts[1:]:
            joined = joined + fs.sep + p.fillna("")
    else:
        src = raw["_src"].to_numpy() if "_src" in raw else np.zeros(len(raw), dtype=int)
        names = np.array(source_names or ["source"], dtype=object)[src]
        key = pd.Series(names, index=raw.index).astype("string")
        for p in parts:
            key = key + "\x1f" + p.fillna("")
        uniq, inv = np.unique(key.to_numpy(dtype=object).astype(str), return_inverse=True)
        hashed = np.array([hashlib.blake2b(u.encode(), digest_size=8).hexdigest() for u in uniq],
                          dtype=object)[inv]
        joined = pd.Series(names + "-" + hashed, index=raw.index, dtype="string")
    out = joined.mask(pd.Series(missing, index=raw.index)).astype("string")
    if fs.required:
        det = (name + " from " + "+".join(fs.derived_from) + ": a part is empty")
        ledger.apply(Problem(missing, "MISSING_REQUIRED", "quarantine", det, name))
    return out


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
