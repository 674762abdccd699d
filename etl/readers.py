"""Extract stage: a small registry of source readers (pygeoapi-style plugins, not if-chains).

Each reader turns one ``SourceSpec`` into a ``RawFrame``: the raw attribute columns exactly as the
source system exported them, a geometry column (or none), the CRS the file declares (or None),
and a per-record label for messages. Readers never guess a CRS and never drop a record.

Before reading, each reader checks what the format cannot check for itself: the path stays
inside the raw folder (symlinks included) and is a file, not a GDAL connection string, nor a
VRT or GDALG file that would read data named inside it (refused by suffix and by content, also
inside a .zip), a Shapefile's three parts agree on their record count, and the text really is
in the declared encoding (the real one is named when it is not).
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from config.errors import SourceError
from config.models import LayerSpec, SourceSpec

SHP_PARTS = (".shx", ".dbf")
#: DBF records sampled for the encoding check (evenly spaced over the file)
ENCODING_SAMPLE = 5000
#: DBF records looked at at once for cut text (bounded memory for any file size)
DBF_ROWS = 1 << 16


@dataclass
class RawFrame:
    frame: gpd.GeoDataFrame  # raw columns + "geometry" (may be all None for tables)
    file_crs: str | None  # what the file itself declares (WKT/EPSG), None when absent
    files: list[Path]  # every file read (for hashing and the data date)
    has_geometry: bool = True
    #: raw column -> records whose DBF text was cut inside a character by the export
    at_width: dict[str, np.ndarray] = field(default_factory=dict)
    #: raw column -> (values that fill the DBF field width, the width in bytes)
    filled: dict[str, tuple[int, int]] = field(default_factory=dict)
    header_date: str | None = None  # a DBF's "last update" date
    warnings: list[str] = field(default_factory=list)  # what GDAL/Python said while reading
    #: attribute columns known although there are no records (a header-only CSV)
    columns_known: bool = True


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


#: "/vsicurl/...", "PG:dbname=...", "CSV:file.csv", "https://...": a GDAL connection string or
#: virtual file system path, not a file of the raw folder
_NOT_A_PATH = re.compile(r"^[/\\]vsi|^[A-Za-z][A-Za-z0-9_+.-]+:")
#: formats that read data named inside them, wherever it is (an OGR/GDAL VRT, a GDALG
#: pipeline): a door out of the raw folder, so refused whatever the file is called
_INDIRECT_SUFFIXES = {".vrt": "GDAL VRT", ".gdalg.json": "GDALG pipeline"}
_INDIRECT_HEADS = ((b"<OGRVRTDataSource", "GDAL VRT"), (b"<VRTDataset", "GDAL VRT"),
                   (b'"gdal_streamed_alg"', "GDALG pipeline"))
#: what such a file reads (shown in the message)
_SRC_RE = re.compile(rb'<SrcDataSource[^>]*>([^<]{0,200})<|"command_line"\s*:\s*"([^"]{0,200})')
_HEAD = 4096
#: a zip (member) that cannot be read: corrupt, encrypted, an unsupported compression
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError,
               zlib.error)


def _indirect(name: str, head: bytes) -> str | None:
    """The kind of reference-reading format ``name`` with its first bytes ``head`` is, or
    None (GDAL recognises these formats by the same signatures, whatever the suffix)."""
    low = name.lower()
    for suffix, kind in _INDIRECT_SUFFIXES.items():
        if low.endswith(suffix):
            return kind
    return next((kind for sig, kind in _INDIRECT_HEADS if sig in head), None)


def _refuse_indirect(path: Path, rel: str, raw_dir: Path, layer: str) -> None:
    """Refuse a file GDAL would open as a VRT or GDALG (also as the only member of a .zip,
    which GDAL opens directly): it reads data named inside it, possibly outside the raw
    folder (``<SrcDataSource>/etc/passwd</SrcDataSource>``)."""
    try:
        if not path.is_file():
            return
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError:  # unreadable: the reader says so, naming the file
        return
    members: list[tuple[str, bytes]] = [(rel, head)]
    if head.startswith(b"PK") and zipfile.is_zipfile(path):
        members = []
        with contextlib.suppress(*_ZIP_ERRORS), zipfile.ZipFile(path) as z:
            for info in z.infolist()[:1000]:
                if info.is_dir():
                    continue
                data = b""  # a member that cannot be read is judged by its name
                with contextlib.suppress(*_ZIP_ERRORS), z.open(info) as m:
                    data = m.read(_HEAD)  # a few KB of each member, never the whole
                members.append((f"{rel}/{info.filename}", data))
    for name, data in members:
        kind = _indirect(name, data)
        if kind is None:
            continue
        found = _SRC_RE.search(data)
        target = (next(g for g in found.groups() if g is not None).decode(
            "utf-8", errors="replace").strip() if found else "?")
        raise SourceError("source_indirect", layer=layer, file=name, kind=kind,
                          target=target or "?", raw=str(raw_dir))


def source_path(raw_dir: Path, rel: str, layer: str, *, must_exist: bool = True,
                missing_key: str = "source_missing") -> Path:
    """``raw_dir / rel``, refused when it leads outside the raw folder (``..``, an absolute
    path or a symlink out of it), when it is not a file path at all (a GDAL connection string
    or ``/vsi...`` path), when it is a format that reads other data named inside it (VRT,
    GDALG), or, with ``must_exist``, when it is missing."""
    if _NOT_A_PATH.match(rel):
        raise SourceError("source_not_a_file", layer=layer, file=rel, raw=str(raw_dir))
    root = raw_dir.resolve()
    path = raw_dir / rel
    real = path.resolve()
    if not real.is_relative_to(root):
        raise SourceError("source_outside_raw", layer=layer, file=rel, raw=str(raw_dir),
                          target=str(real))
    if must_exist and not path.exists():
        raise SourceError(missing_key, layer=layer, file=rel, raw=str(raw_dir))
    _refuse_indirect(path, rel, raw_dir, layer)
    return path


def file_hash(paths: list[Path]) -> str:
    """sha256 over all parts of a source (a Shapefile is several files)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------ encodings

_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (BOM付き / with BOM)", "utf-16": "UTF-16",
          "utf-16-le": "UTF-16LE", "utf-16-be": "UTF-16BE", "cp932": "cp932 (Shift_JIS)"}
_FIX = {"utf-8-sig": "utf-8", "utf-16-le": "utf-16", "utf-16-be": "utf-16"}


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name.lower()


def _family(name: str) -> str:
    c = _codec(name)
    return "utf-8" if c in ("utf-8", "utf-8-sig") else "utf-16" if c.startswith("utf-16") else c


def _decodes(chunks: list[bytes], enc: str) -> float:
    """Share of the chunks that decode strictly in ``enc`` (1.0 for none)."""
    if not chunks:
        return 1.0
    ok = 0
    for c in chunks:
        try:
            c.decode(enc)
            ok += 1
        except UnicodeDecodeError as e:
            ok += e.end >= len(c)  # a character cut at the end of a value: still this encoding
        except LookupError:
            pass
    return ok / len(chunks)


def sniff_encoding(head: bytes, chunks: list[bytes]) -> str | None:
    """What text really is: ``utf-8-sig``/``utf-16`` by BOM, else ``ascii``, ``utf-8``,
    ``utf-16-le``/``-be`` (NUL bytes) or ``cp932``; None when none of them fits.

    ``chunks`` are independent pieces of text (records): one cut character (a DBF value cut
    at its field width) spoils one chunk, not the verdict.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if sample and sample.count(0) > len(sample) // 4:
        odd = sample[1::2].count(0) > sample[0::2].count(0)
        return "utf-16-le" if odd else "utf-16-be"
    text = [c for c in chunks if any(b >= 0x80 for b in c)]
    if not text:
        return "ascii"
    if _decodes(text, "utf-8") == 1.0:
        return "utf-8"
    if _decodes(text, "cp932") >= 0.95:
        return "cp932"
    if _decodes(text, "utf-8") >= 0.95:
        return "utf-8"
    return None


def check_encoding(declared: str | None, actual: str | None, chunks: list[bytes], *,
                   layer: str, file: str, declared_by: str = "encoding") -> str | None:
    """Compare the declared encoding with the text; returns the encoding to read with.

    A UTF-8 file declared cp932 decodes into mojibake without any error, so valid UTF-8 (which
    cp932 text practically never is) or a BOM wins over the declaration and names the fix.
    """
    if actual in (None, "ascii"):
        if declared and actual is None and _decodes(
                [c for c in chunks if any(b >= 0x80 for b in c)], declared) < 0.95:
            raise SourceError("source_encoding", layer=layer, file=file, encoding=declared,
                              detail="neither UTF-8 nor cp932 either")
        return declared
    name = _NAMES.get(actual, actual)
    fix = _FIX.get(actual, actual)
    if declared is None:
        raise SourceError("source_encoding_undeclared", layer=layer, file=file, actual=name,
                          fix=fix)
    fam, dfam = _family(actual), _family(declared)
    if fam == dfam:
        return "utf-8-sig" if actual == "utf-8-sig" else actual if fam == "utf-16" else declared
    if fam not in ("utf-8", "utf-16") and _decodes(
            [c for c in chunks if any(b >= 0x80 for b in c)], declared) >= 0.95:
        return declared  # e.g. shift_jis or euc_jp text that is what it says
    evidence = {"utf-8-sig": "BOM EF BB BF", "utf-16": "BOM", "utf-16-le": "NUL bytes",
                "utf-16-be": "NUL bytes", "utf-8": "valid UTF-8 throughout"}.get(
        actual, f"does not decode as {declared}")
    raise SourceError("source_encoding_wrong", layer=layer, file=file,
                      declared=f"{declared} ({declared_by})" if declared_by != "encoding"
                      else declared, actual=name, evidence=evidence, fix=fix)


def _check_mojibake(df: pd.DataFrame, layer: str, file: str, encoding: str | None) -> None:
    """Refuse text that decoded wrongly: replacement chars or Latin-1 soup mean a wrong encoding."""
    for col in df.columns:
        if col == "geometry" or (df[col].dtype.kind not in "OU" and str(df[col].dtype) != "string"):
            continue
        s = df[col].dropna().astype(str)
        if s.empty:
            continue
        sample = s.iloc[:: max(1, len(s) // 2000)]
        joined = "".join(sample.tolist())
        if not joined:
            continue
        bad = joined.count("\ufffd")
        # mojibake of Japanese read as Latin-1 is accented letters and C1 controls; × and ÷
        # (ledger marks such as ○/×) are real characters
        latin = sum(1 for ch in joined if ("\u00c0" <= ch <= "\u00ff" and ch not in "×÷")
                    or "\u0080" <= ch <= "\u009f")
        if bad or latin > max(3, len(joined) // 50):
            raise SourceError("source_encoding", layer=layer, file=file,
                              encoding=encoding or "auto",
                              detail=f"column {col}: {sample.iloc[0][:20]!r}")


# ------------------------------------------------------------------ shapefiles


@dataclass
class DbfHeader:
    records: int
    header_len: int
    record_len: int
    fields: list[tuple[bytes, str, int, int]]  # raw name, type, width, offset in the record
    date: str | None


def read_dbf_header(dbf: Path, layer: str, file: str) -> DbfHeader:
    """The DBF header (record count, field widths, last-update date); refuses a cut file."""
    size = dbf.stat().st_size
    with open(dbf, "rb") as f:
        head = f.read(32)
        if len(head) < 12:
            raise SourceError("source_truncated", layer=layer, file=file,
                              detail=f"{dbf.name}: {size} bytes")
        n = int.from_bytes(head[4:8], "little")
        hlen = int.from_bytes(head[8:10], "little")
        rlen = int.from_bytes(head[10:12], "little")
        desc = f.read(max(0, hlen - 32))
    if size < hlen + n * rlen:
        raise SourceError("source_truncated", layer=layer, file=file,
                          detail=f"{dbf.name}: {size} < {hlen + n * rlen} bytes")
    fields, off = [], 1  # byte 0 of a record is the deletion flag
    for i in range(0, len(desc) - 31, 32):
        d = desc[i:i + 32]
        if d[0] == 0x0D:
            break
        fields.append((d[:11].split(b"\x00")[0], chr(d[11]), d[16], off))
        off += d[16]
    date = None
    try:
        if head[1]:
            date = dt.date(1900 + head[1], head[2], head[3]).isoformat()
    except ValueError:
        date = None
    return DbfHeader(n, hlen, rlen, fields, date)


def _dbf_chunks(dbf: Path, h: DbfHeader) -> list[bytes]:
    """Field names and text values of up to ``ENCODING_SAMPLE`` records (one chunk each)."""
    chunks = [name for name, _, _, _ in h.fields]
    text = [(off, w) for _, t, w, off in h.fields if t == "C"]
    if not text or h.records == 0:
        return chunks
    step = max(1, h.records // ENCODING_SAMPLE)
    with open(dbf, "rb") as f:
        for i in range(0, h.records, step):
            f.seek(h.header_len + i * h.record_len)
            rec = f.read(h.record_len)
            chunks += [rec[o:o + w].rstrip(b" \x00") for o, w in text]
    return chunks


def check_shp_parts(shp: Path, shx: Path, h: DbfHeader, layer: str, file: str) -> None:
    """.shp, .shx and .dbf must hold the same number of records, or records would vanish."""
    size = shx.stat().st_size
    if size < 100 or (size - 100) % 8:
        raise SourceError("source_truncated", layer=layer, file=file,
                          detail=f"{shx.name}: {size} bytes")
    shapes = (size - 100) // 8
    if shapes != h.records:
        raise SourceError("source_parts_disagree", layer=layer, file=file, shapes=shapes,
                          records=h.records)
    if shapes:
        with open(shx, "rb") as f:
            f.seek(size - 8)
            last = f.read(8)
        end = (int.from_bytes(last[:4], "big") + 4 + int.from_bytes(last[4:], "big")) * 2
        if shp.stat().st_size < end:
            raise SourceError("source_truncated", layer=layer, file=file,
                              detail=f"{shp.name}: {shp.stat().st_size} < {end} bytes")


def dbf_text_limits(dbf: Path, h: DbfHeader, enc: str) -> tuple[dict[bytes, np.ndarray],
                                                                  dict[bytes, tuple[int, int]]]:
    """Per text field of a DBF: the records whose value was certainly cut (its last character
    is an incomplete multi-byte sequence), and how many values fill the field width.

    A value that fills its width may have been cut by the export or may just be the longest
    one, so those are counted and warned about; a split character is proof, so those records
    go through the field's ``on_truncated`` policy. Decoded per distinct value.
    """
    cut: dict[bytes, np.ndarray] = {}
    full: dict[bytes, tuple[int, int]] = {}
    if h.records == 0 or not any(t == "C" for _, t, _, _ in h.fields):
        return cut, full
    text = [(name, width, off) for name, t, width, off in h.fields if t == "C" and width]
    k = dict.fromkeys([n for n, _, _ in text], 0)
    blank = dict.fromkeys(k, 0)
    masks: dict[bytes, np.ndarray] = {}
    # read a slice of records at a time (plain reads, not a memory map: mapped pages of a
    # large DBF would count in the resident size), so memory stays bounded for any file
    with open(dbf, "rb") as f:
        for a in range(0, h.records, DBF_ROWS):
            rows = min(DBF_ROWS, h.records - a)
            f.seek(h.header_len + a * h.record_len)
            buf = np.frombuffer(f.read(rows * h.record_len), dtype=np.uint8)
            buf = buf[: rows * h.record_len].reshape(-1, h.record_len)
            for name, width, off in text:
                col = np.ascontiguousarray(buf[:, off:off + width])
                last = col[:, -1]
                k[name] += int(((last != 0x20) & (last != 0)).sum())
                blank[name] += int((~((col != 0x20) & (col != 0)).any(axis=1)).sum())
                high = (col >= 0x80).any(axis=1)
                if not high.any():
                    continue
                uniq, inv = np.unique(col[high].view(f"V{width}").ravel(), return_inverse=True)
                bad = np.zeros(len(uniq), dtype=bool)
                for i, u in enumerate(uniq):
                    b = bytes(u).rstrip(b" \x00")
                    try:
                        b.decode(enc)
                    except UnicodeDecodeError as e:
                        bad[i] = e.start >= len(b) - 3 and e.reason in (
                            "unexpected end of data", "incomplete multibyte sequence",
                            "illegal multibyte sequence") and e.end >= len(b)
                    except LookupError:
                        return cut, full
                if bad.any():
                    m = masks.setdefault(name, np.zeros(h.records, dtype=bool))
                    m[a + np.flatnonzero(high)[bad[inv.ravel()]]] = True
    for name, width, _ in text:
        if k[name] and k[name] < h.records - blank[name]:  # not a fixed-length code in all
            full[name] = (k[name], width)
        if name in masks:
            cut[name] = masks[name]
    return cut, full


def _flatten_nested(df: pd.DataFrame) -> None:
    """Lists and objects (GeoJSON arrays, JSON fields) become their JSON text, in place: a
    column value is one value, and the raw text is what the quarantine row shows."""
    for col in df.columns:
        if col == "geometry" or df[col].dtype.kind != "O":
            continue
        s = df[col]
        nested = s.map(lambda v: isinstance(v, list | dict | tuple | np.ndarray))
        if nested.any():
            df[col] = s.where(~nested, s[nested].map(lambda v: json.dumps(
                v.tolist() if isinstance(v, np.ndarray) else v, ensure_ascii=False,
                default=str)))


def _short(msg: str, *paths: Path) -> str:
    """A warning text without absolute paths (the raw folder's files are named relatively)."""
    for p in paths:
        for form in {str(p), str(p.resolve())}:
            msg = msg.replace(form + os.sep, "").replace(form, p.name)
    return msg.splitlines()[0][:300] if msg else msg


@dataclass
class _OgrSource:
    """An ogr source checked and ready to read: path, parts, DBF header, encoding, options."""

    path: Path
    rel: str
    files: list[Path]
    encoding: str | None
    dbf: DbfHeader | None
    kw: dict


def _open_ogr(spec: LayerSpec, src: SourceSpec, raw_dir: Path) -> _OgrSource:
    """Every check made before an ogr source is read (parts, record counts, encoding)."""
    path = source_path(raw_dir, src.path, spec.id)
    rel = _rel(path, raw_dir)
    files = [path]
    encoding = src.encoding
    dbf = None
    if path.suffix.lower() == ".shp":
        for ext in SHP_PARTS:
            part = next((p for p in (path.with_suffix(ext), path.with_suffix(ext.upper()))
                         if p.exists()), None)
            if part is None:
                raise SourceError("source_missing_part", layer=spec.id, file=rel, part=ext)
            source_path(raw_dir, _rel(part, raw_dir), spec.id)
            files.append(part)
        extra = [p for p in (path.with_suffix(".prj"), path.with_suffix(".cpg")) if p.exists()]
        for p in extra:
            source_path(raw_dir, _rel(p, raw_dir), spec.id)
        files += extra
        dbf = read_dbf_header(files[2], spec.id, rel)
        check_shp_parts(path, files[1], dbf, spec.id, rel)
    elif path.suffix.lower() == ".dbf":
        dbf = read_dbf_header(path, spec.id, rel)
    if dbf is not None:
        dbf_path = files[2] if len(files) > 2 else path
        chunks = _dbf_chunks(dbf_path, dbf)
        cpg = dbf_path.with_suffix(".cpg")
        declared, by = encoding, "encoding"
        if declared is None and cpg.exists():
            declared = cpg.read_text(encoding="ascii", errors="replace").strip() or None
            by = ".cpg"
        actual = sniff_encoding(b"", chunks)
        encoding = check_encoding(declared, actual, chunks, layer=spec.id, file=rel,
                                  declared_by=by) or encoding
    kw: dict = {"layer": src.layer} if src.layer else {}
    if encoding:
        kw["encoding"] = encoding
    # the driver's open options (CSV HEADERS=NO, EMPTY_STRING_AS_NULL=YES): pyogrio takes them
    # as extra keywords; upper case (as GDAL names them) never collides with its own arguments
    kw.update({str(k).upper(): _open_option(v) for k, v in src.options.items()})
    return _OgrSource(path, rel, files, encoding, dbf, kw)


@contextlib.contextmanager
def _gdal_errors(spec: LayerSpec, o: _OgrSource, raw_dir: Path,
                 caught: list[warnings.WarningMessage]) -> Iterator[None]:
    """GDAL's errors while opening or reading as the source's own errors; warnings kept."""
    try:
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            yield
        caught += got
    except (DataSourceError, DataLayerError, UnicodeDecodeError, OSError, ValueError) as e:
        detail = _short(str(e), o.path, raw_dir) if str(e) else type(e).__name__
        if isinstance(e, UnicodeDecodeError) or "not encoded in UTF-8" in detail:
            raise SourceError("source_encoding", layer=spec.id, file=o.rel,
                              encoding=o.encoding or "auto", detail=detail) from e
        raise SourceError("source_unreadable", layer=spec.id, file=o.rel, detail=detail) from e
    except Exception as e:  # GDAL raises bare exceptions for some corrupt files
        raise SourceError("source_unreadable", layer=spec.id, file=o.rel,
                          detail=f"{type(e).__name__}: {_short(str(e), o.path, raw_dir)[:200]}"
                          ) from e


def _ogr_frame(df: pd.DataFrame, src: SourceSpec, spec: LayerSpec, rel: str,
               info: dict) -> gpd.GeoDataFrame:
    """Nested values as JSON text, a "lat,lon" column as points, always a GeoDataFrame."""
    _flatten_nested(df)
    if src.point_field:
        df = gpd.GeoDataFrame(pd.DataFrame(df.drop(columns="geometry", errors="ignore")),
                              geometry=_points_from_text(df, src, spec.id, rel))
    if not isinstance(df, gpd.GeoDataFrame):
        df = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([None] * len(df), index=df.index))
    return df


def _notes(o: _OgrSource, caught: list[warnings.WarningMessage], raw_dir: Path) -> list[str]:
    """What GDAL said while reading, once per message, without absolute paths."""
    return list(dict.fromkeys(_short(str(w.message), o.path, raw_dir) for w in caught
                              if "Measured (M) geometry" not in str(w.message)))


def _ogr_raw(o: _OgrSource, df: gpd.GeoDataFrame, info: dict, src: SourceSpec,
             caught: list[warnings.WarningMessage], raw_dir: Path, n: int) -> RawFrame:
    """The RawFrame of an ogr source: DBF cut/filled text, header date, reader warnings."""
    if src.point_field:
        info = {**info, "geometry_type": "Point"}
    notes = _notes(o, caught, raw_dir)
    has_geom = info.get("geometry_type") is not None
    at_width: dict[str, np.ndarray] = {}
    filled: dict[str, tuple[int, int]] = {}
    if o.dbf is not None:
        enc = o.encoding or "ascii"
        cut, full = dbf_text_limits(o.files[2] if len(o.files) > 2 else o.path, o.dbf, enc)
        at_width = {k.decode(enc, errors="replace"): v for k, v in cut.items()}
        filled = {k.decode(enc, errors="replace"): v for k, v in full.items()}
    return RawFrame(df, info.get("crs"), o.files, has_geometry=has_geom, at_width=at_width,
                    filled=filled,
                    header_date=o.dbf.date if o.dbf is not None else None, warnings=notes,
                    columns_known=n > 0 or len(info.get("fields", [])) > 0
                    or o.dbf is not None)


def read_ogr(spec: LayerSpec, src: SourceSpec, raw_dir: Path) -> RawFrame:
    """Any GDAL vector format through pyogrio + Arrow (8x faster than fiona at 100k features)."""
    o = _open_ogr(spec, src, raw_dir)
    caught: list[warnings.WarningMessage] = []
    with _gdal_errors(spec, o, raw_dir, caught):
        info = pyogrio.read_info(o.path, **o.kw)
        df = pyogrio.read_dataframe(o.path, use_arrow=True, **o.kw)
    has_geom = isinstance(df, gpd.GeoDataFrame)
    df = _ogr_frame(df, src, spec, o.rel, info)
    _check_mojibake(df, spec.id, o.rel, o.encoding)
    raw = _ogr_raw(o, df, info, src, caught, raw_dir, len(df))
    raw.has_geometry = raw.has_geometry and (has_geom or bool(src.point_field))
    return raw


def _open_option(value: object) -> str:
    """A spec value as GDAL open-option text (YAML booleans become YES/NO)."""
    if isinstance(value, bool):
        return "YES" if value else "NO"
    return str(value)


def _points_from_text(df: pd.DataFrame, src: SourceSpec, layer: str, file: str) -> gpd.GeoSeries:
    """Points from ONE text column holding both coordinates (``location="lat,lon"``).

    The two numbers become (first, second) as written; ``axis_order: yx`` on the source then
    says the first one is y (latitude), exactly as for a file's own coordinates. A value that
    is not two numbers gives no geometry, so the record goes through the missing-geometry
    policy instead of vanishing.
    """
    col = src.point_field
    if col not in df.columns:
        raise SourceError("source_missing_field", layer=layer, file=file, fields=col,
                          have=", ".join(c for c in df.columns if c != "geometry"))
    parts = df[col].astype("string").str.split(src.point_separator, n=1, expand=True,
                                                 regex=False)
    if parts.shape[1] < 2:
        parts = pd.DataFrame({0: parts.iloc[:, 0] if parts.shape[1] else pd.NA, 1: pd.NA},
                             index=df.index)
    a = pd.to_numeric(parts[0].str.strip(), errors="coerce").to_numpy(dtype=float)
    b = pd.to_numeric(parts[1].str.strip(), errors="coerce").to_numpy(dtype=float)
    pts = shapely.points(a, b)
    pts[~(np.isfinite(a) & np.isfinite(b))] = None
    return gpd.GeoSeries(pts, index=df.index)


def _csv_source(spec: LayerSpec, src: SourceSpec, raw_dir: Path) -> tuple[Path, str, str, int]:
    """(path, path as named in messages, the encoding to read it with, lines): the encoding is
    the spec's, checked against the bytes (a wrong one is an error naming the right one)."""
    path = source_path(raw_dir, src.path, spec.id)
    rel = _rel(path, raw_dir)
    data = path.read_bytes()
    chunks = data.splitlines()
    enc = check_encoding(src.encoding or "utf-8", sniff_encoding(data[:4096], chunks), chunks,
                         layer=spec.id, file=rel) or src.encoding or "utf-8"
    return path, rel, enc, len(chunks)


@contextlib.contextmanager
def _csv_errors(spec: LayerSpec, rel: str, enc: str) -> Iterator[None]:
    """pandas' reading errors as the bilingual source errors that name the file and the fix."""
    try:
        yield
    except UnicodeDecodeError as e:
        raise SourceError("source_encoding", layer=spec.id, file=rel, encoding=enc,
                          detail=f"byte {e.start}: {e.reason}") from e
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, TypeError) as e:
        raise SourceError("source_unreadable", layer=spec.id, file=rel,
                          detail=str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                          ) from e


def read_csv(spec: LayerSpec, src: SourceSpec, raw_dir: Path) -> RawFrame:
    """A CSV table; with ``x_field``/``y_field`` (or one ``point_field``) the rows become points.

    ``options`` are pandas ``read_csv`` keywords (e.g. ``skiprows`` for metadata rows above
    the header of a CKAN LINK file)."""
    path, rel, enc, _ = _csv_source(spec, src, raw_dir)
    with _csv_errors(spec, rel, enc):
        df = pd.read_csv(path, dtype=str, encoding=enc, keep_default_na=False,
                         na_values=[""], **src.options)
    df.columns = [str(c) for c in df.columns]
    _check_mojibake(df, spec.id, rel, enc)
    has_geom = bool((src.x_field and src.y_field) or src.point_field)
    return RawFrame(_csv_frame(df, spec, src, rel), None, [path], has_geometry=has_geom)


def _csv_frame(df: pd.DataFrame, spec: LayerSpec, src: SourceSpec, rel: str
               ) -> gpd.GeoDataFrame:
    """CSV rows with their points (``x_field``/``y_field`` or ``point_field``), if any."""
    geom = gpd.GeoSeries([None] * len(df), index=df.index)
    if src.x_field and src.y_field:
        missing = [c for c in (src.x_field, src.y_field) if c not in df.columns]
        if missing:
            raise SourceError("source_missing_field", layer=spec.id, file=rel,
                              fields=", ".join(missing), have=", ".join(df.columns))
        x = pd.to_numeric(df[src.x_field], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(df[src.y_field], errors="coerce").to_numpy(dtype=float)
        pts = shapely.points(x, y)
        pts[~(np.isfinite(x) & np.isfinite(y))] = None
        geom = gpd.GeoSeries(pts, index=df.index)
    elif src.point_field:
        geom = _points_from_text(df, src, spec.id, rel)
    return gpd.GeoDataFrame(df, geometry=geom)


def read_mojxml(spec: LayerSpec, src: SourceSpec, raw_dir: Path) -> RawFrame:
    """法務省 登記所備付地図 (地図XML, .xml or the nested .zip) through the ``mojxml`` package.

    mojxml returns lon/lat computed with stock PROJ from the file's plane zone, i.e. on the
    JGD2000 datum (the XML cannot say whether it is JGD2000 or JGD2011), so the file CRS is
    reported as EPSG:4612; a spec may declare EPSG:6668 with ``crs_override`` when known.
    """
    from mojxml.parse import ParseOptions, parse_raw
    from mojxml.reader import iter_content_xmls

    path = source_path(raw_dir, src.path, spec.id)
    rel = _rel(path, raw_dir)
    opts = ParseOptions(include_arbitrary_crs=bool(src.options.get("include_arbitrary", False)),
                        include_chikugai=bool(src.options.get("include_chikugai", False)))
    feats: list[dict] = []
    try:
        for content in iter_content_xmls([path]):
            feats.extend(parse_raw(content, opts))
    except Exception as e:  # lxml / zip errors: the file is not a readable 地図XML
        raise SourceError("source_unreadable", layer=spec.id, file=rel,
                          detail=f"{type(e).__name__}: {str(e)[:200]}") from e
    props = pd.DataFrame([f["properties"] for f in feats])
    geoms = [shapely.geometry.shape(f["geometry"]) if f.get("geometry") else None for f in feats]
    gdf = gpd.GeoDataFrame(props, geometry=gpd.GeoSeries(geoms, index=props.index))
    # 任意座標系 (arbitrary local grid): mojxml leaves the coordinates untouched, so there is no
    # CRS to report; the spec must declare one (with control points done elsewhere) or fail.
    arbitrary = "座標系" in props and (props["座標系"] == "任意座標系").all() and len(props) > 0
    return RawFrame(gdf, None if arbitrary else "EPSG:4612", [path],
                    columns_known=len(props) > 0)


READERS: dict[str, Callable[[LayerSpec, SourceSpec, Path], RawFrame]] = {
    "ogr": read_ogr,
    "csv": read_csv,
    "mojxml": read_mojxml,
}


# ------------------------------------------------------------------ streamed reading

#: Characters that betray Japanese text decoded as Latin-1 (see ``_check_mojibake``).
_LATIN_RE = "[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0080-\u009f]"
_SUSPECT_RE = "[\ufffd\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0080-\u009f]"


class MojibakeTally:
    """``_check_mojibake`` over a source read in batches, with the very same verdict.

    The whole-frame check samples every k-th non-null text value (k from the column's
    non-null count) and counts replacement and Latin-1 characters in the sample. Per column
    this keeps each non-null value's length (4 bytes) and the few values that hold such
    characters, so the same sample is judged at the end without keeping the text.
    """

    def __init__(self) -> None:
        self.lengths: dict[str, list[np.ndarray]] = {}
        self.marked: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self.first: dict[str, str] = {}
        self.seen: dict[str, int] = {}
        self.text: dict[str, bool] = {}

    def add(self, df: pd.DataFrame) -> None:
        for col in df.columns:
            if col == "geometry":
                continue
            if col not in self.text:
                self.text[col] = (df[col].dtype.kind in "OU"
                                  or str(df[col].dtype) == "string")
            if not self.text[col]:
                continue
            s = df[col].dropna().astype(str)
            if s.empty:
                continue
            base = self.seen.get(col, 0)
            self.seen[col] = base + len(s)
            self.first.setdefault(col, s.iloc[0])
            arr = pa.array(s.to_numpy(dtype=object), type=pa.string())
            self.lengths.setdefault(col, []).append(
                pc.utf8_length(arr).to_numpy(zero_copy_only=False).astype(np.int32))
            # one pass finds the (rare) values holding such characters; only those are counted
            hit = np.flatnonzero(pc.match_substring_regex(arr, _SUSPECT_RE).to_numpy(
                zero_copy_only=False))
            if len(hit):
                sub = arr.take(pa.array(hit))
                bad = pc.count_substring(sub, "\ufffd").to_numpy(zero_copy_only=False)
                latin = pc.count_substring_regex(sub, _LATIN_RE).to_numpy(zero_copy_only=False)
                self.marked.setdefault(col, []).append((hit + base, bad.astype(np.int64),
                                                        latin.astype(np.int64)))

    def check(self, layer: str, file: str, encoding: str | None) -> None:
        for col, parts in self.lengths.items():
            lengths = np.concatenate(parts)
            step = max(1, len(lengths) // 2000)
            total = int(lengths[::step].sum())
            if not total:
                continue
            bad = latin = 0
            for pos, b, la in self.marked.get(col, []):
                on = pos % step == 0
                bad += int(b[on].sum())
                latin += int(la[on].sum())
            if bad or latin > max(3, total // 50):
                raise SourceError("source_encoding", layer=layer, file=file,
                                  encoding=encoding or "auto",
                                  detail=f"column {col}: {self.first[col][:20]!r}")


@dataclass
class SourceStream:
    """A source read in batches: ``head`` is its RawFrame without records (files, CRS, DBF
    limits, header date), ``batches`` yields the records as ``read_*`` would give them, and
    ``finish`` makes the whole-source checks and adds the reader's warnings to ``head``."""

    head: RawFrame
    batches: Callable[[], Iterator[gpd.GeoDataFrame]]
    finish: Callable[[], None]


def _int_nulls(o: _OgrSource, info: dict, spec: LayerSpec, raw_dir: Path,
               caught: list[warnings.WarningMessage]) -> set[str]:
    """Integer and boolean fields with a null anywhere in the source: the whole read gives
    them float64 (object for booleans), so every batch must, whatever its own values."""
    cols = [f for f, d in zip(info["fields"], info["dtypes"], strict=True)
            if str(d).startswith(("int", "uint", "bool"))]
    if not cols:
        return set()
    with _gdal_errors(spec, o, raw_dir, caught):
        _, table = pyogrio.read_arrow(o.path, columns=cols, read_geometry=False, **o.kw)
    return {c for c in cols if c in table.column_names and table[c].null_count > 0}


def _arrow_frame(table: pa.Table, meta: dict, nulls: set[str]) -> pd.DataFrame:
    """One Arrow batch as ``pyogrio.read_dataframe(use_arrow=True)`` converts a whole layer."""
    df = table.to_pandas(self_destruct=True)
    del table
    for c in nulls:
        if c in df.columns:
            df[c] = df[c].astype(object if df[c].dtype.kind == "b" else "float64")
    gname = meta["geometry_name"] or "wkb_geometry"
    if gname not in df.columns:
        return df
    wkb = df.pop(gname)
    if wkb.dtype != object:
        wkb = wkb.to_numpy(na_value=None)
    df["geometry"] = shapely.from_wkb(wkb, on_invalid="raise")
    return gpd.GeoDataFrame(df, geometry="geometry", crs=meta["crs"])


def stream_ogr(spec: LayerSpec, src: SourceSpec, raw_dir: Path,
               batch_size: int) -> SourceStream | None:
    """An ogr source as a stream of Arrow batches (None when it is read whole: it fits in one
    batch, or has date-time or JSON fields, which pyogrio converts per whole column)."""
    o = _open_ogr(spec, src, raw_dir)
    caught: list[warnings.WarningMessage] = []
    with _gdal_errors(spec, o, raw_dir, caught):
        info = pyogrio.read_info(o.path, **o.kw)
    if (0 <= int(info["features"]) <= batch_size
            or any(str(d).startswith("datetime") and str(d) != "datetime64[D]"
                   for d in info["dtypes"]) or "OFSTJSON" in list(info.get("ogr_subtypes", []))):
        return None  # one batch, or fields pyogrio converts looking at the whole column
    nulls = _int_nulls(o, info, spec, raw_dir, caught)
    tally = MojibakeTally()
    head = _ogr_raw(o, gpd.GeoDataFrame(), info, src, [], raw_dir, int(info["features"]))

    def batches() -> Iterator[gpd.GeoDataFrame]:
        n = 0
        with _gdal_errors(spec, o, raw_dir, caught):
            ctx = pyogrio.open_arrow(o.path, batch_size=batch_size, use_pyarrow=True,
                                     datetime_as_string=True, **o.kw)
            meta, reader = ctx.__enter__()
        try:
            while True:
                with _gdal_errors(spec, o, raw_dir, caught):
                    batch = next(reader, None)
                    if batch is None:
                        break
                    df = _arrow_frame(pa.Table.from_batches([batch]), meta, nulls)
                df = _ogr_frame(df, src, spec, o.rel, info)
                tally.add(df)
                n += len(df)
                yield df
        finally:
            ctx.__exit__(None, None, None)
        if n == 0:  # no records: the whole read's frame (its columns, no rows)
            yield read_ogr(spec, src, raw_dir).frame

    def finish() -> None:
        tally.check(spec.id, o.rel, o.encoding)
        head.warnings = _notes(o, caught, raw_dir)

    return SourceStream(head, batches, finish)


def stream_csv(spec: LayerSpec, src: SourceSpec, raw_dir: Path,
               batch_size: int) -> SourceStream | None:
    """A CSV table read ``batch_size`` rows at a time (all text, so every batch has the
    dtypes of the whole read)."""
    path, rel, enc, lines = _csv_source(spec, src, raw_dir)
    if lines <= batch_size + 1:
        return None  # one batch (lines, an upper bound of the records): read it whole
    tally = MojibakeTally()
    has_geom = bool((src.x_field and src.y_field) or src.point_field)
    head = RawFrame(gpd.GeoDataFrame(), None, [path], has_geometry=has_geom)

    def batches() -> Iterator[gpd.GeoDataFrame]:
        n = 0
        with _csv_errors(spec, rel, enc):
            reader = pd.read_csv(path, dtype=str, encoding=enc, keep_default_na=False,
                                 na_values=[""], chunksize=batch_size, **src.options)
            for df in reader:
                df = df.reset_index(drop=True)
                df.columns = [str(c) for c in df.columns]
                tally.add(df)
                n += len(df)
                yield _csv_frame(df, spec, src, rel)
        if n == 0:
            yield read_csv(spec, src, raw_dir).frame

    def finish() -> None:
        tally.check(spec.id, rel, enc)

    return SourceStream(head, batches, finish)


STREAMS: dict[str, Callable[[LayerSpec, SourceSpec, Path, int], SourceStream | None]] = {
    "ogr": stream_ogr,
    "csv": stream_csv,
}


def load_lookup(raw_dir: Path, spec: LayerSpec, path: str, key: str, value: str,
                encoding: str) -> dict[str, str]:
    """A code table beside the raw data (e.g. 管種コード表 CSV) as a str -> str dict."""
    p = source_path(raw_dir, path, spec.id)
    data = p.read_bytes()
    chunks = data.splitlines()
    enc = check_encoding(encoding, sniff_encoding(data[:4096], chunks), chunks, layer=spec.id,
                         file=path) or encoding
    try:
        df = pd.read_csv(p, dtype=str, encoding=enc, keep_default_na=False)
    except UnicodeDecodeError as e:
        raise SourceError("source_encoding", layer=spec.id, file=path, encoding=encoding,
                          detail=e.reason) from e
    missing = [c for c in (key, value) if c not in df.columns]
    if missing:
        raise SourceError("source_missing_field", layer=spec.id, file=path,
                          fields=", ".join(missing), have=", ".join(df.columns))
    return dict(zip(df[key].str.strip(), df[value].str.strip(), strict=True))
