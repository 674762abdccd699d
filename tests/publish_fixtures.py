"""A tiny project plus a hand-written master, for publication and server tests.

Why not run the ETL: publication must be testable on its own contract (``master.gpkg`` with one
table per layer in EPSG:6675, ``manifest.json``) and break one way at a time. The real master
(real specs, ETL run on the sample exports: conftest's ``uozu_merged``) is published by
``test_publish_e2e.py`` and served to the real clients in ``test_server_live.py``;
:func:`public_copy` points such a project at a private public directory.

Everything is built in ``tmp_path`` (datasette style): ``config/project.yml``, ``layers/*.yml``,
``layers/codelists/*.yml``, ``data/merged/master.gpkg`` and ``manifest.json``. The master holds
internal values that must never be published: owner names, phone numbers, internal statuses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pmtiles.reader import MemorySource, Reader, all_tiles
from shapely.geometry import LineString, Point, box

from config import Project, load_project
from etl.schema import (
    CODES_TABLE,
    LAYER_META_TABLE,
    LINEAGE_COLUMNS,
    QUARANTINE_TABLE,
    output_columns,
)
from publish.build import precompress

E0, N0 = 21600.0, 91800.0  # near Uozu city hall, JGD2011 zone VII (EPSG:6675)
MASTER_CRS = "EPSG:6675"

# Values that exist only in internal columns or layers: they must never appear in public output.
SECRETS = ("山田太郎", "0765-99-0000", "課税評価額", "廃止予定", "管理者メモ")
QUOTE_DISTRICT = "O'Brien通り"  # a property value with a quote (SQL escaping)
DISTRICTS = ("本町", "上村木", "吉島", QUOTE_DISTRICT)
MATERIALS = ("VU", "HP", "DIP")

PROJECT_YML = """
city: {{ja: {city_ja}, en: {city_en}}}
city_code: "{city_code}"
target_crs: {target_crs}
keep_runs: 3
store: {store}
publish:
  title: {{ja: 魚津市 公開型GIS, en: Uozu City public GIS}}
  description:
    ja: 魚津市が公開する下水道・避難所のデータ
    en: Sewer and shelter data published by Uozu City
  contact_name: 魚津市 建設課
  contact_email: kensetsu@example.jp
  contact_url: https://www.city.uozu.toyama.jp/
  contact_phone: 0765-23-0000
  city_url: https://www.city.uozu.toyama.jp/
  terms_version: "2"
  keywords: [魚津市, 下水道, 避難所]
  max_items: {max_items}
  default_items: {default_items}
  base_url: {base_url}
  trusted_proxies: {trusted_proxies}
"""

#: ``publish.pages`` when the roles of the pipe sheet are declared (``roles=True``)
PAGES_YML = """  pages:
    - id: pipe
      title: {ja: 配管図, en: Pipe map}
"""

#: the map block that makes ``sewer_pipes`` a ``pipe`` layer (``roles=True``)
PIPE_ROLE = """map:
  pages: [pipe]
  role: pipe
  pipe: {utility: sewer, diameter_field: diameter_mm, material_field: material}
"""

#: a public parcel layer (大字 + 地番) playing the ``parcel`` role (``roles=True``)
PARCELS = """
spec_version: 1
id: parcels
title: {ja: 地番図, en: Parcel map}
geometry_type: Polygon
visibility: public
source_system: tax_ledger
attribution: {ja: 固定資産税 地番図, en: Property tax parcel map}
id_field: parcel_id
sources:
  - {name: parcels, path: tax/PARCELS.shp}
fields:
  parcel_id: {from: PID, required: true, unique: true, visibility: public,
              title: {ja: 筆ID, en: Parcel id}}
  oaza: {from: OAZA, visibility: public, queryable: true, title: {ja: 大字, en: Town}}
  chiban: {from: CHIBAN, visibility: public, queryable: true, title: {ja: 地番, en: Lot}}
map:
  pages: [pipe]
  role: parcel
  parcel: {oaza_field: oaza, chiban_field: chiban}
"""

SEWER_PIPES = """
spec_version: 1
id: sewer_pipes
title: {ja: 下水道管きょ, en: Sewer pipes}
description: {ja: 公共下水道の管きょ (供用中のもの), en: Public sewer pipes in use}
geometry_type: LineString
visibility: public
source_system: sewer_ledger
attribution: {ja: 魚津市 下水道台帳, en: Uozu City sewer ledger}
keywords: [下水道, sewer]
id_field: pipe_id
public_filter: status == "in_use"
sources:
  - {name: pipes, path: sewer/PIPES.shp}
fields:
  pipe_id: {from: PIPE_ID, required: true, unique: true, visibility: public, queryable: true,
            title: {ja: 管きょ番号, en: Pipe number}}
  material: {from: MAT, codelist: sewer_material, visibility: public, queryable: true,
             title: {ja: 管種, en: Material}}
  diameter_mm: {from: DIA, type: int, unit: mm, visibility: public, queryable: true,
                title: {ja: 管径, en: Diameter}}
  length_m: {from: LEN, type: float, unit: m, visibility: public, title: {ja: 延長, en: Length}}
  install_fy: {from: FY, type: int, visibility: public, title: {ja: 布設年度, en: Fiscal year laid}}
  district: {from: DIST, visibility: public, queryable: true, title: {ja: 地区, en: District}}
  status: {from: STATUS, title: {ja: 状態, en: Status}}
  remarks: {from: REM, title: {ja: 備考, en: Remarks}}
"""

SHELTERS = """
spec_version: 1
id: shelters
title: {ja: 指定緊急避難場所, en: Designated emergency evacuation sites}
geometry_type: Point
visibility: public
source_system: disaster_office
attribution: {ja: 魚津市 指定緊急避難場所一覧, en: Uozu City list of evacuation sites}
license: CC-BY-4.0
id_field: shelter_id
sources:
  - {name: shelters, path: shelters.csv, reader: csv, x_field: lon, y_field: lat}
fields:
  shelter_id: {from: ID, required: true, unique: true, visibility: public, queryable: true,
               title: {ja: 番号, en: Number}}
  name: {from: NAME, visibility: public, queryable: true, title: {ja: 名称, en: Name}}
  capacity: {from: CAP, type: int, visibility: public, title: {ja: 想定収容人数, en: Capacity}}
  flood: {from: FLOOD, type: bool, visibility: public, queryable: true,
          title: {ja: 洪水, en: Flood}}
  opened: {from: OPENED, type: date, visibility: public, title: {ja: 指定日, en: Designated on}}
  manager_phone: {from: TEL, title: {ja: 管理者電話, en: Manager phone}}
"""

PARCEL_TAX = """
spec_version: 1
id: parcel_tax
title: {ja: 課税地番, en: Taxed parcels}
geometry_type: Polygon
visibility: internal
source_system: tax_ledger
attribution: {ja: 魚津市 税務課, en: Uozu City tax section}
id_field: parcel_no
sources:
  - {name: tax, path: tax/TAX.csv, reader: csv}
fields:
  parcel_no: {from: CHIBAN, required: true, unique: true, visibility: public}
  owner_name: {from: OWNER}
  assessed_value: {from: VALUE, type: int}
"""

SEWER_MATERIAL = """
id: sewer_material
title: {ja: 下水道管種, en: Sewer pipe material}
codes:
  VU: {ja: 硬質塩化ビニル管 (薄肉), en: Rigid PVC pipe (thin wall), color: "#1f77b4"}
  HP: {ja: ヒューム管, en: Hume (reinforced concrete) pipe, color: "#7f7f7f"}
  DIP: {ja: ダクタイル鋳鉄管, en: Ductile iron pipe, color: "#d62728"}
"""


@contextlib.contextmanager
def isolated_site_builders() -> Iterator[None]:
    """Publish without the project's map pages (``publish.build.build_site`` switched off).

    Why: these tests are about publication itself (store, config, release switch); the pages
    have their own tests.
    """
    from publish import build as api

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "build_site", lambda ctx: None)
        yield




def public_copy(project: Project, public_dir: Path, **publish: Any) -> Project:
    """The same project publishing into ``public_dir`` (and with ``publish:`` overrides)."""
    pub = project.config.publish.model_copy(update=publish)
    cfg = project.config.model_copy(update={"public_dir": str(public_dir), "publish": pub})
    return Project(project.root, cfg, project.specs, project.codelists, project.spec_hashes)


#: the fixture's city: (ja, en, code, target_crs); ``OTHER_CITY`` is in another plane zone
CITY = ("魚津市", "Uozu City", "162043", "EPSG:6675")
OTHER_CITY = ("例市", "Example City", "999999", "EPSG:6672")


def _for_city(text: str, city: tuple[str, str, str, str]) -> str:
    """The fixture's texts with the city's names (and a neutral web site for another city)."""
    if city == CITY:
        return text
    return (text.replace("魚津市", city[0]).replace("Uozu City", city[1])
            .replace("https://www.city.uozu.toyama.jp/", "https://www.example.jp/"))


def write_project(root: Path, *, base_url: str | None = "http://127.0.0.1:5000",
                  max_items: int = 1000, default_items: int = 10,
                  extra_specs: dict[str, str] | None = None, store: str = "gpkg",
                  roles: bool = False, city: tuple[str, str, str, str] = CITY,
                  trusted_proxies: tuple[str, ...] = ()) -> Project:
    """Write config, specs and code lists under ``root`` and load them.

    ``store``: ``gpkg`` or a PostGIS URL (conftest's ``store_url`` fixture gives both).
    ``base_url=None``: links follow the request. ``roles``: sewer pipes play the ``pipe`` role
    and a public ``parcels`` layer the ``parcel`` role (the pipe sheet exists).
    """
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "layers" / "codelists").mkdir(parents=True, exist_ok=True)
    yml = PROJECT_YML.format(
        base_url="null" if base_url is None else base_url, max_items=max_items,
        default_items=default_items, store=store, city_ja=city[0], city_en=city[1],
        city_code=city[2], target_crs=city[3], trusted_proxies=json.dumps(list(trusted_proxies)))
    (root / "config" / "project.yml").write_text(
        _for_city(yml + (PAGES_YML if roles else ""), city), encoding="utf-8")
    specs = {"sewer_pipes": SEWER_PIPES + (PIPE_ROLE if roles else ""),
             "shelters": SHELTERS + ("map: {pages: [pipe]}\n" if roles else ""),
             "parcel_tax": PARCEL_TAX, **({"parcels": PARCELS} if roles else {}),
             **(extra_specs or {})}
    for lid, text in specs.items():
        (root / "layers" / f"{lid}.yml").write_text(_for_city(textwrap.dedent(text), city),
                                                    encoding="utf-8")
    (root / "layers" / "codelists" / "sewer_material.yml").write_text(SEWER_MATERIAL,
                                                                      encoding="utf-8")
    return load_project(root)


def sample_frames(n_pipes: int = 40, n_shelters: int = 9, *, generation: int = 0,
                  seed: int = 7, with_parcels: bool = False,
                  crs: str = MASTER_CRS) -> dict[str, gpd.GeoDataFrame]:
    """Target-column frames in ``crs`` (what the ETL would have produced).

    Every 5th pipe is ``abandoned`` and one has an unknown status: both are withheld by the
    public filter. ``generation`` shifts ``install_fy`` so tests can tell releases apart.
    ``with_parcels`` adds the public ``parcels`` layer (大字 + 地番).
    """
    rng = np.random.default_rng(seed)
    pipes = []
    for i in range(n_pipes):
        x, y = E0 + (i % 50) * 40.0, N0 + (i // 50) * 40.0
        pipes.append({
            "pipe_id": f"SP-{i:05d}",
            "material": MATERIALS[i % len(MATERIALS)],
            "diameter_mm": int((150, 200, 250, 300)[i % 4]),
            "length_m": 30.0,
            "install_fy": 1980 + (i % 40) + 100 * generation,
            "district": DISTRICTS[i % len(DISTRICTS)],
            "status": None if i == 3 else ("abandoned" if i % 5 == 4 else "in_use"),
            "remarks": f"所有者 山田太郎 TEL 0765-99-0000 #{i}" if i % 2 else "管理者メモ 廃止予定",
            "geometry": LineString([(x, y), (x + 30.0, y + float(rng.uniform(-5, 5)))]),
        })
    shelters = []
    for i in range(n_shelters):
        shelters.append({
            "shelter_id": f"H{i:03d}",
            "name": f"避難所{i}号 ({DISTRICTS[i % len(DISTRICTS)]})",
            "capacity": int(100 + 10 * i),
            "flood": bool(i % 2),
            "opened": dt.date(2020, 4, 1 + i % 28),
            "manager_phone": "0765-99-0000",
            "geometry": Point(E0 + 200.0 * i, N0 - 300.0 + 50.0 * i),
        })
    parcels = [{
        "parcel_no": f"{100 + i}-{i % 3}",
        "owner_name": "山田太郎",
        "assessed_value": 1_000_000 + i,
        "geometry": box(E0 + 100 * i, N0 + 500, E0 + 100 * i + 80, N0 + 580),
    } for i in range(5)]
    frames = {
        "sewer_pipes": gpd.GeoDataFrame(pipes, crs=MASTER_CRS),
        "shelters": gpd.GeoDataFrame(shelters, crs=MASTER_CRS),
        "parcel_tax": gpd.GeoDataFrame(parcels, crs=MASTER_CRS),
    }
    if with_parcels:
        frames["parcels"] = gpd.GeoDataFrame([{
            "parcel_id": f"P{i:03d}", "oaza": DISTRICTS[i % 2], "chiban": f"{10 + i}-{i % 3}",
            "geometry": box(E0 + 60 * i, N0 - 60, E0 + 60 * i + 50, N0 - 10),
        } for i in range(12)], crs=MASTER_CRS)
    frames["shelters"]["opened"] = pd.to_datetime(frames["shelters"]["opened"])
    if crs != MASTER_CRS:
        frames = {lid: gdf.to_crs(crs) for lid, gdf in frames.items()}
    return frames


def write_master(project: Project, frames: dict[str, gpd.GeoDataFrame], *,
                 run_id: str | None = None, data_date: str = "2025-03-31",
                 data_dates: dict[str, str] | None = None,
                 drop: dict[str, list[str]] | None = None) -> str:
    """Commit a master run through the project's store, following the ETL's output contract.

    Written with the same store API the ETL uses (``begin`` / ``write_layer`` / ``commit``), so
    the publication tests run unchanged on the GeoPackage and the PostGIS store. ``drop``
    removes columns from a layer, to simulate a master older than its spec. Returns the run id.
    """
    from etl.pipeline import new_run_id
    from etl.stores import open_store

    store = open_store(project)
    run_id = run_id or new_run_id()
    layers: dict[str, Any] = {}
    with store.lock():
        staged = store.begin(run_id, partial=False)
        try:
            for lid, gdf in frames.items():
                spec = project.specs[lid]
                df = gdf.copy()
                for col in output_columns(spec):
                    if col.name not in df.columns:
                        df[col.name] = (f"{col.name}-value" if col.name in LINEAGE_COLUMNS
                                        else None)
                df["source_file"] = f"/secret/path/{lid}.shp"
                df["quality_flags"] = "管理者メモ"
                df = df[[c.name for c in output_columns(spec)
                         if c.name not in (drop or {}).get(lid, [])] + ["geometry"]]
                staged.write_layer(lid, df, geometry_type=spec.geometry_type)
                layers[lid] = {"features": len(df),
                               "data_date": (data_dates or {}).get(lid, data_date)}
            extra = {
                QUARANTINE_TABLE: pd.DataFrame({"layer": ["sewer_pipes"], "reason": ["BAD_VALUE"],
                                                "record": ["山田太郎"]}),
                CODES_TABLE: pd.DataFrame({"codelist": ["sewer_material"], "code": ["VU"],
                                           "label_ja": ["硬質塩化ビニル管"], "label_en": ["PVC"],
                                           "color": ["#1f77b4"]}),
                LAYER_META_TABLE: pd.DataFrame({"layer": list(layers), "run_id": run_id}),
            }
            for name, table in extra.items():
                staged.write_layer(name, table, geometry_type=None)
            manifest = {"run_id": run_id,
                        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        "layers": layers}
            staged.commit(manifest)
        except BaseException:
            staged.abort()
            raise
    return run_id


def make_project(root: Path, *, n_pipes: int = 40, n_shelters: int = 9, generation: int = 0,
                 **kw: Any) -> Project:
    """Project + master in one call (the usual fixture)."""
    project = write_project(root, **kw)
    write_master(project, sample_frames(n_pipes, n_shelters, generation=generation,
                                        with_parcels=bool(kw.get("roles")),
                                        crs=project.config.target_crs))
    return project


# ---------------------------------------------------------------- the CLI's own server


@contextlib.contextmanager
def cli_serve(root: Path, log: Path, timeout: float = 60) -> Iterator[str]:
    """``uozu-gis --project ROOT serve --port <free port>`` in a subprocess; yields its base URL.

    What a city's staff run after a default ``publish`` (no ``base_url``): the links must follow
    the port the server was started on. ``UOZU_GIS_PROJECT`` is removed from the environment so
    only ``--project`` decides. The server is stopped (our own process, by its id) on exit.
    """
    import os
    import subprocess
    import sys
    import time

    import requests

    from publish.server.app import free_port

    port = free_port()
    cli = [str(Path(sys.executable).parent / "uozu-gis"), "--project", str(root), "-q"]
    env = {k: v for k, v in os.environ.items() if k != "UOZU_GIS_PROJECT"}
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen([*cli, "serve", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert proc.poll() is None, log.read_text(encoding="utf-8")[-2000:]
                assert time.monotonic() < deadline, "the server did not answer /healthz"
                try:
                    if requests.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def ogrinfo(*args: str, timeout: float = 120) -> tuple[str, list[str]]:
    """Debian's ``ogrinfo ARGS --debug on``: (stdout, every URL GDAL fetched, in order)."""
    import re
    import subprocess

    out = subprocess.run(["ogrinfo", *args, "--debug", "on"], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, re.findall(r"HTTP: Fetch\((\S+?)\)\n", out.stderr)


def readable(name: str, data: bytes) -> bytes:
    """A release file as its readers see it, for scans of what a release holds: a tile archive's
    tiles and metadata decompressed, an ``.npz`` graph's strings, a brotli/gzip copy decoded;
    any other file byte for byte. (A byte scan of compressed data cannot see a canary.)"""
    path = Path(name.split("?")[0])
    for encoding, suffix in precompress.ENCODINGS.items():
        if path.suffix == suffix:
            return readable(path.stem, precompress.decode(data, encoding))
    if path.suffix == ".pmtiles":
        src = MemorySource(data)
        parts = [json.dumps(Reader(src).metadata(), ensure_ascii=False).encode()]
        return b"\n".join(parts + [gzip.decompress(t) for _, t in all_tiles(src)])
    if path.suffix == ".npz":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return "\n".join(str(x) for k in z.files if z[k].dtype.kind in "US"
                             for x in z[k].ravel()).encode()
    return data
