"""Extract stage: a small registry of source readers (pygeoapi-style plugins, not if-chains).

Each reader turns one ``SourceSpec`` into a ``RawFrame``: the raw attribute columns exactly as the
source system exported them, a geometry column (or none), the CRS the file declares (or None),
and a per-record label for messages. Readers never guess a CRS and never drop a record.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from config.errors import SourceError
from config.models import LayerSpec, SourceSpec

SHP_PARTS = (".shx", ".dbf")


@dataclass
class RawFrame:
    frame: gpd.GeoDataFrame  # raw columns + "geometry" (may be all None for tables)
    file_crs: str | None  # what the file itself declares (WKT/EPSG), None when absent
    files: list[Path]  # every file read (for hashing and the data date)
    has_geometry: bool = True


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def file_hash(paths: list[Path]) -> str:
    """sha256 over all parts of a source (a Shapefile is several files)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


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
        latin = sum(1 for ch in joined if "\u00c0" <= ch <= "\u00ff" or "\u0080" <= ch <= "\u009f")
        if bad or latin > max(3, len(joined) // 50):
            raise SourceError("source_encoding", layer=layer, file=file,
                              encoding=encoding or "auto",
                              detail=f"column {col}: {sample.iloc[0][:20]!r}")


def _check_dbf_size(dbf: Path, layer: str, file: str) -> None:
    """A DBF cut short (interrupted copy) would read as "no columns": say what it really is."""
    size = dbf.stat().st_size
    head = dbf.read_bytes()[:32] if size >= 12 else b""
    if len(head) < 12:
        raise SourceError("source_truncated", layer=layer, file=file,
                          detail=f"{dbf.name}: {size} bytes")
    n = int.from_bytes(head[4:8], "little")
    hlen = int.from_bytes(head[8:10], "little")
    rlen = int.from_bytes(head[10:12], "little")
    if size < hlen + n * rlen:
        raise SourceError("source_truncated", layer=layer, file=file,
                          detail=f"{dbf.name}: {size} < {hlen + n * rlen} bytes")


def read_ogr(spec: LayerSpec, src: SourceSpec, raw_dir: Path) -> RawFrame:
    """Any GDAL vector format through pyogrio + Arrow (8x faster than fiona at 100k features)."""
    path = raw_dir / src.path
    rel = _rel(path, raw_dir)
    if not path.exists():
        raise SourceError("source_missing", layer=spec.id, file=rel)
    files = [path]
    if path.suffix.lower() == ".shp":
        for ext in SHP_PARTS:
            part = next((p for p in (path.with_suffix(ext), path.with_suffix(ext.upper()))
                         if p.exists()), None)
            if part is None:
                raise SourceError("source_missing_part", layer=spec.id, file=rel, part=ext)
            files.append(part)
        files += [p for p in (path.with_suffix(".prj"), path.with_suffix(".cpg")) if p.exists()]
        _check_dbf_size(files[2], spec.id, rel)
    kw: dict = {"layer": src.layer} if src.layer else {}
    if src.encoding:
        kw["encoding"] = src.encoding
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            info = pyogrio.read_info(path, **kw)
            df = pyogrio.read_dataframe(path, use_arrow=True, **kw)
    except (DataSourceError, DataLayerError, UnicodeDecodeError, OSError, ValueError) as e:
        detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if isinstance(e, UnicodeDecodeError) or "not encoded in UTF-8" in detail:
            raise SourceError("source_encoding", layer=spec.id, file=rel,
                              encoding=src.encoding or "auto", detail=detail) from e
        raise SourceError("source_unreadable", layer=spec.id, file=rel, detail=detail) from e
    except Exception as e:  # GDAL raises bare exceptions for some corrupt files
        raise SourceError("source_unreadable", layer=spec.id, file=rel,
                          detail=f"{type(e).__name__}: {str(e)[:200]}") from e
    _check_mojibake(df, spec.id, rel, src.encoding)
    has_geom = isinstance(df, gpd.GeoDataFrame) and info.get("geometry_type") is not None
    if not isinstance(df, gpd.GeoDataFrame):
        df = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([None] * len(df), index=df.index))
    return RawFrame(df, info.get("crs"), files, has_geometry=has_geom)


def read_csv(spec: LayerSpec, src: SourceSpec, raw_dir: Path) -> RawFrame:
    """A CSV table; with ``x_field``/``y_field`` the rows become points."""
    path = raw_dir / src.path
    rel = _rel(path, raw_dir)
    if not path.exists():
        raise SourceError("source_missing", layer=spec.id, file=rel)
    enc = src.encoding or "utf-8"
    try:
        df = pd.read_csv(path, dtype=str, encoding=enc, keep_default_na=False,
                         na_values=[""], **src.options)
    except UnicodeDecodeError as e:
        raise SourceError("source_encoding", layer=spec.id, file=rel, encoding=enc,
                          detail=f"byte {e.start}: {e.reason}") from e
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise SourceError("source_unreadable", layer=spec.id, file=rel,
                          detail=str(e).splitlines()[0][:200]) from e
    _check_mojibake(df, spec.id, rel, enc)
    geom = gpd.GeoSeries([None] * len(df), index=df.index)
    has_geom = False
    if src.x_field and src.y_field:
        missing = [c for c in (src.x_field, src.y_field) if c not in df.columns]
        if missing:
            raise SourceError("source_missing_field", layer=spec.id, file=rel,
                              fields=", ".join(missing), have=", ".join(df.columns))
        x = pd.to_numeric(df[src.x_field], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(df[src.y_field], errors="coerce").to_numpy(dtype=float)
        pts = shapely.points(x, y)
        pts[np.isnan(x) | np.isnan(y)] = None
        geom = gpd.GeoSeries(pts, index=df.index)
        has_geom = True
    return RawFrame(gpd.GeoDataFrame(df, geometry=geom), None, [path], has_geometry=has_geom)


def read_mojxml(spec: LayerSpec, src: SourceSpec, raw_dir: Path) -> RawFrame:
    """法務省 登記所備付地図 (地図XML, .xml or the nested .zip) through the ``mojxml`` package.

    mojxml returns lon/lat computed with stock PROJ from the file's plane zone, i.e. on the
    JGD2000 datum (the XML cannot say whether it is JGD2000 or JGD2011), so the file CRS is
    reported as EPSG:4612; a spec may declare EPSG:6668 with ``crs_override`` when known.
    """
    from mojxml.parse import ParseOptions, parse_raw
    from mojxml.reader import iter_content_xmls

    path = raw_dir / src.path
    rel = _rel(path, raw_dir)
    if not path.exists():
        raise SourceError("source_missing", layer=spec.id, file=rel)
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
    return RawFrame(gdf, None if arbitrary else "EPSG:4612", [path])


READERS: dict[str, Callable[[LayerSpec, SourceSpec, Path], RawFrame]] = {
    "ogr": read_ogr,
    "csv": read_csv,
    "mojxml": read_mojxml,
}


def load_lookup(raw_dir: Path, spec: LayerSpec, path: str, key: str, value: str,
                encoding: str) -> dict[str, str]:
    """A code table beside the raw data (e.g. 管種コード表 CSV) as a str -> str dict."""
    p = raw_dir / path
    if not p.exists():
        raise SourceError("source_missing", layer=spec.id, file=path)
    try:
        df = pd.read_csv(p, dtype=str, encoding=encoding, keep_default_na=False)
    except UnicodeDecodeError as e:
        raise SourceError("source_encoding", layer=spec.id, file=path, encoding=encoding,
                          detail=e.reason) from e
    missing = [c for c in (key, value) if c not in df.columns]
    if missing:
        raise SourceError("source_missing_field", layer=spec.id, file=path,
                          fields=", ".join(missing), have=", ".join(df.columns))
    return dict(zip(df[key].str.strip(), df[value].str.strip(), strict=True))
