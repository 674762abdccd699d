"""Open data per public layer, regenerated with each release: GeoPackage, GeoJSON and CSV.

Read from the release's public store only (so a download holds exactly what the API serves),
written with GDAL (pyogrio) into ``<release>/opendata/``:

* ``<layer>.gpkg``, ``<layer>.geojson`` (RFC 7946, CRS84) with the API's column names;
* ``<layer>.csv``: UTF-8 with BOM (Excel opens it as UTF-8), Japanese column titles from the
  spec, ``緯度``/``経度`` for points, ``WKT`` (CRS84) for lines and polygons;
* where the city maps a layer to a 自治体標準オープンデータセット layout (``opendata:`` of the
  layer's spec; the layouts are data in ``opendata_standards.yml``), also the standard's
  files, e.g. ``<city_code>_evacuation_space.csv`` (指定緊急避難場所一覧), its columns in its
  order;
* ``README.txt`` (ja/en: every file, its 出典 and licence) and ``index.json`` (the same for
  programs and the landing page: title, counts, data date, bytes, sha256).

Licence and 出典 also travel inside the GeoPackage and GeoJSON (layer description).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import yaml
from pydantic import Field

from config import Project
from config.errors import ConfigError
from config.messages import both
from config.models import I18nText, LayerSpec, OpenDataConfig, OpenDataLayout, Strict
from publish.build.public_store import plan_layer
from publish.model import DECIMALS, ROWID_COLUMN, STORE_CRS, LayerPlan

OPENDATA_DIR = "opendata"
STANDARDS_FILE = Path(__file__).with_name("opendata_standards.yml")
CSV_ENCODING = "utf-8-sig"  # UTF-8 with BOM
LAT, LON, WKT = "緯度", "経度", "WKT"


class Standard(Strict):
    """One layout of the 自治体標準オープンデータセット (engine data, not city config)."""

    number: str  # the sheet number of the standard ("03")
    title: I18nText
    file: str  # file stem template: {city_code}
    standard: I18nText
    url: str
    geometry: str
    auto: dict[str, str] = Field(default_factory=dict)  # column -> city_code | lat | lon
    columns: list[str]


def standards() -> dict[str, Standard]:
    data = yaml.safe_load(STANDARDS_FILE.read_text(encoding="utf-8"))
    return {k: Standard.model_validate(v) for k, v in data.items()}


@dataclass(frozen=True)
class Download:
    """One written file."""

    layer: str
    format: str  # gpkg | geojson | csv
    path: Path
    features: int
    standard: str | None = None  # key of the standard layout, if any

    def entry(self) -> dict[str, Any]:
        data = self.path.read_bytes()
        return {"file": self.path.name, "format": self.format, "features": self.features,
                "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                **({"standard": self.standard} if self.standard else {})}


def _credit(spec: LayerSpec) -> dict[str, str]:
    """The 出典 and licence line of a layer (ja / en)."""
    return both("opendata_credit", source_ja=spec.attribution.ja, source_en=spec.attribution.en,
                license=spec.license, url=spec.license_url)


def _titles(plan: LayerPlan) -> dict[str, str]:
    """Column -> Japanese title (unique: a repeated title gets its column name added)."""
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for c in plan.columns:
        t = c.title.ja if c.title else c.name
        seen[t] = seen.get(t, 0) + 1
    for c in plan.columns:
        t = c.title.ja if c.title else c.name
        out[c.name] = t if seen[t] == 1 else f"{t} ({c.name})"
    return out


def _is_point(gdf: gpd.GeoDataFrame) -> bool:
    types = set(gdf.geometry.geom_type.dropna())
    return bool(types) and types <= {"Point"}


def _lonlat(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    xy = shapely.get_coordinates(gdf.geometry.values)
    return np.round(xy[:, 0], DECIMALS), np.round(xy[:, 1], DECIMALS)


def _csv_text(values: pd.Series) -> pd.Series:
    """Values as the CSV shows them: booleans as 1/0 (true/false is not Japanese), NULL empty."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map({True: "1", False: "0"}).astype("string")
    return values.astype("string")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """UTF-8 with BOM, CRLF line ends (what Excel writes and expects), no index."""
    frame.to_csv(path, index=False, encoding=CSV_ENCODING, lineterminator="\r\n")


def _write_geo(gdf: gpd.GeoDataFrame, path: Path, layer: str, description: str,
               fmt: str) -> None:
    if fmt == "gpkg":
        pyogrio.write_dataframe(gdf, path, layer=layer, driver="GPKG", use_arrow=True,
                                layer_options={"DESCRIPTION": description,
                                               "IDENTIFIER": layer, "FID": ROWID_COLUMN},
                                dataset_options={"VERSION": "1.3"})
    else:
        pyogrio.write_dataframe(gdf, path, layer=layer, driver="GeoJSON", use_arrow=True,
                                layer_options={"RFC7946": "YES", "DESCRIPTION": description,
                                               "COORDINATE_PRECISION": str(DECIMALS),
                                               "WRITE_NAME": "YES"})


def layer_downloads(project: Project, store: Path, lid: str, out: Path) -> list[Download]:
    """The layer in its own columns: GeoPackage, GeoJSON, CSV."""
    spec = project.specs[lid]
    plan = plan_layer(spec, project.codelists)
    gdf = pyogrio.read_dataframe(store, layer=lid, use_arrow=True)
    gdf = gdf[[*plan.names, gdf.geometry.name]]
    desc = " / ".join(_credit(spec).values())
    files = []
    for fmt in ("gpkg", "geojson"):
        path = out / f"{lid}.{fmt}"
        _write_geo(gdf, path, lid, f"{spec.title.ja} / {spec.title.en}. {desc}", fmt)
        files.append(Download(lid, fmt, path, len(gdf)))
    titles = _titles(plan)
    table = pd.DataFrame({titles[c]: _csv_text(gdf[c]) for c in plan.names})
    if _is_point(gdf):
        lon, lat = _lonlat(gdf)
        table[LAT], table[LON] = lat, lon
    else:
        table[WKT] = shapely.to_wkt(gdf.geometry.values, rounding_precision=DECIMALS)
    path = out / f"{lid}.csv"
    write_csv(table, path)
    files.append(Download(lid, "csv", path, len(table)))
    return files


def spec_file(project: Project, lid: str) -> str:
    """The layer's spec file as the city's staff know it (``layers/<id>.yml``)."""
    return str(Path(project.config.layers_dir) / f"{lid}.yml")


def layouts(project: Project) -> dict[str, OpenDataLayout]:
    """Public layers with a standard layout (``opendata:`` of their spec)."""
    return {lid: s.opendata for lid, s in project.specs.items()
            if s.opendata is not None and s.visibility == "public"}


def check_mapping(project: Project, lid: str, od: OpenDataLayout, std: Standard | None = None
                  ) -> Standard:
    """The layer's layout names a known standard, its real columns and public fields (else a
    clear error naming the spec file, the key and what is allowed)."""
    file = spec_file(project, lid)
    spec = project.specs.get(lid)
    if spec is None or spec.visibility != "public":
        raise ConfigError("opendata_layer", file=file,
                          visibility=spec.visibility if spec else "-")
    if std is None:
        std = standards().get(od.standard)
        if std is None:
            raise ConfigError("opendata_standard", file=file, standard=od.standard,
                              known=", ".join(standards()))
    public = set(plan_layer(spec, project.codelists).names)
    for col in od.columns:
        if col not in std.columns:
            raise ConfigError("opendata_column", file=file, column=col,
                              standard=std.title.ja, known=", ".join(std.columns))
    for name, key in od.fields().items():
        if name not in public:
            raise ConfigError("opendata_field", file=file, key=key, field=name,
                              known=", ".join(sorted(public)))
    return std


def check_layouts(project: Project) -> None:
    """Every layout of the project, before a publish writes anything."""
    for lid, od in layouts(project).items():
        check_mapping(project, lid, od)


def standard_table(project: Project, gdf: gpd.GeoDataFrame, od: OpenDataLayout, std: Standard
                   ) -> gpd.GeoDataFrame:
    """Rows of the standard list, its columns in its order (text; flags "1" or empty)."""
    if od.where:
        gdf = gdf[gdf[od.where].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    n = len(gdf)
    lon, lat = _lonlat(gdf) if n else (np.zeros(0), np.zeros(0))
    auto = {"city_code": np.full(n, project.config.city_code, dtype=object),
            "lat": lat.astype(object), "lon": lon.astype(object)}
    cols: dict[str, Any] = {}
    for col in std.columns:
        src = od.column(col)
        if src is not None and src.const is not None:
            cols[col] = [src.const] * n
        elif src is not None and src.field:
            v = gdf[src.field]
            if src.format == "flag":
                cols[col] = v.astype("boolean").fillna(False).map({True: "1", False: ""}
                                                                   ).tolist()
            else:
                cols[col] = v.astype("string").fillna("").tolist()
        elif col in std.auto:
            cols[col] = [str(x) for x in auto[std.auto[col]]]
        else:
            cols[col] = [""] * n
    return gpd.GeoDataFrame(pd.DataFrame(cols, dtype="string"), geometry=gdf.geometry.values,
                            crs=STORE_CRS)


def standard_downloads(project: Project, store: Path, lid: str, od: OpenDataLayout, out: Path
                       ) -> list[Download]:
    std = check_mapping(project, lid, od)
    spec = project.specs[lid]
    table = standard_table(project, pyogrio.read_dataframe(store, layer=lid), od, std)
    stem = std.file.format(city_code=project.config.city_code)
    desc = (f"{std.title.ja} ({std.standard.ja}) / {std.title.en} ({std.standard.en}). "
            + " / ".join(_credit(spec).values()))
    files = []
    for fmt in ("gpkg", "geojson"):
        path = out / f"{stem}.{fmt}"
        _write_geo(table, path, stem, desc, fmt)
        files.append(Download(lid, fmt, path, len(table), od.standard))
    path = out / f"{stem}.csv"
    write_csv(pd.DataFrame(table.drop(columns=table.geometry.name)), path)
    files.append(Download(lid, "csv", path, len(table), od.standard))
    return files


def _readme(project: Project, entries: dict[str, Any], cfg: OpenDataConfig) -> str:
    lines = [both("opendata_readme_title", city=project.config.city.ja)["ja"],
             both("opendata_readme_title", city=project.config.city.en)["en"], ""]
    if cfg.note:
        lines += [cfg.note.ja, cfg.note.en, ""]
    for lid, e in entries.items():
        lines.append(f"■ {e['title']['ja']} / {e['title']['en']} ({lid})")
        lines.append(f"  {e['credit']['ja']}")
        lines.append(f"  {e['credit']['en']}")
        for f in e["files"]:
            std = f" [{e['standards'][f['standard']]['ja']}]" if f.get("standard") else ""
            lines.append(f"  - {f['file']}{std}: {f['features']}")
        lines.append("")
    lines += [both("opendata_readme_formats")["ja"], both("opendata_readme_formats")["en"]]
    return "\r\n".join(lines) + "\r\n"


def release_artifact(project: Project, store: Path, release_dir: Path,
                     data_dates: dict[str, str] | None = None) -> dict[str, Any]:
    """Write every public layer's downloads into ``<release>/opendata/``; the catalogue."""
    cfg = project.config.publish.opendata
    out = release_dir / OPENDATA_DIR
    out.mkdir(parents=True, exist_ok=True)
    have = {str(n) for n in pyogrio.list_layers(store)[:, 0]}
    std_layers = layouts(project)
    catalog: dict[str, Any] = {}
    for lid in sorted(have):
        spec = project.specs[lid]
        files = layer_downloads(project, store, lid, out)
        stds: dict[str, Any] = {}
        if lid in std_layers:
            od = std_layers[lid]
            files += standard_downloads(project, store, lid, od, out)
            std = standards()[od.standard]
            stds[od.standard] = {"ja": std.title.ja, "en": std.title.en, "number": std.number,
                                 "url": std.url}
        catalog[lid] = {
            "title": spec.title.model_dump(), "credit": _credit(spec),
            "attribution": spec.attribution.model_dump(), "license": spec.license,
            "license_url": spec.license_url, "data_date": (data_dates or {}).get(lid),
            "crs": "OGC:CRS84", "standards": stds, "files": [f.entry() for f in files],
        }
    (out / "index.json").write_text(json.dumps({"layers": catalog}, ensure_ascii=False,
                                               indent=1), encoding="utf-8")
    (out / "README.txt").write_text(_readme(project, catalog, cfg), encoding="utf-8-sig")
    return catalog

