"""Pipe sheets: one page, true scale, the parcel, dates, disclaimer, and nothing internal.

The projects are the two example cities (Uozu: ``layers/*.yml``; Takamatsu, zone IV:
``examples/takamatsu``), sample exports, the real merge and publish, at a small scale, with every
internal field of the master overwritten by ``CANARY-...`` strings and
every row the public filters withhold renamed ``CANARY-WITHHELD-...``: the public store, the PDF
and the map page must contain none of them. :func:`build_canary_project` is shared with
``test_map_pipe.py``.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio
import pytest
import yaml
from pypdf import PdfReader
from pypdf.generic import ContentStream
from pyproj import CRS

from config import Project, load_project, write_derived_project
from config.errors import EtlError
from config.messages import MESSAGES, text
from etl.normalize import apply_normalizer
from etl.schema import output_columns
from publish.pages.pipesheet import (
    MM,
    TARGET_FILL,
    PipeSheetError,
    make_pipe_sheet,
    parse_paper,
    render_pipe_sheet,
)
from publish.pages.roles import sheet_roles

REPO = Path(__file__).resolve().parent.parent
CANARY = "CANARY-"
SCALE = 0.1  # sample size relative to the city: ~2.5k parcels, ~1.7k sewer pipes
MAP_URL = "http://127.0.0.1:5000/maps/pipe.html"



# ---------------------------------------------------------------------------------------------
# The shared fixture: real sample -> real merge -> canaries -> real publish (+ the map page)
# ---------------------------------------------------------------------------------------------

def _canary_master(project: Project, dst: Path) -> dict[str, int]:
    """Commit a copy of the current master as a run in ``dst`` with every internal text value
    replaced by a canary (through the store API, like the ETL).

    Rows a ``public_filter`` withholds get a canary id too, so a withheld row that leaked would
    show up. Returns how many canary values each layer got.
    """
    from etl.stores import open_store
    from etl.stores.gpkg import GpkgStore

    src = open_store(project)
    manifest = src.manifest()
    assert manifest is not None
    out = GpkgStore(dst, keep_runs=2)
    staged = out.begin(manifest["run_id"], partial=False)
    planted: dict[str, int] = {}
    for name in src.layers():
        df = src.read_layer(name)
        spec = project.specs.get(name)
        if spec is not None:
            n = 0
            for col in output_columns(spec):
                if col.visibility == "public" or col.name not in df.columns:
                    continue
                if col.type == "str" and (spec.public_filter is None
                                          or col.name not in spec.public_filter):
                    df[col.name] = [f"{CANARY}{name}-{col.name}-{i}" for i in range(len(df))]
                    n += len(df)
            if spec.public_filter:
                keep = df.eval(spec.public_filter, engine="python")
                keep = pd.Series(keep, index=df.index).astype("boolean").fillna(False)
                withheld = ~keep.to_numpy(dtype=bool)
                df.loc[withheld, spec.id_field] = [f"{CANARY}WITHHELD-{name}-{i}"
                                                   for i in range(int(withheld.sum()))]
                n += int(withheld.sum())
            planted[name] = n
        gt = spec.geometry_type if spec is not None and spec.join is None else (
            "MultiPolygon" if spec is not None else None)
        staged.write_layer(name, df, geometry_type=gt)
    staged.commit(manifest)
    return planted


def build_canary_project(root: Path, *, base_url: str = "http://127.0.0.1:5000",
                         terms: str = "3", scale: float = SCALE) -> tuple[Project, Any]:
    """A published project whose master is full of canaries; returns (project, PublishResult)."""
    from samples.uozu import generate

    write_derived_project(root, base=REPO, base_url=base_url, terms_version=terms)
    project = load_project(root)
    generate(project.raw_dir, scale=scale)
    return _merge_canaries_publish(project, root)


def build_canary_takamatsu(root: Path, *, scale: float = SCALE) -> tuple[Project, Any]:
    """The second example city (test_example_city's copy of ``examples/takamatsu``), its sample
    exports merged, canaries planted and published like :func:`build_canary_project`."""
    from test_example_city import copy_example

    from examples.takamatsu.samples import generate as gen

    project = load_project(copy_example(root))
    gen.generate(project.raw_dir, scale=scale)
    return _merge_canaries_publish(project, root)


def _merge_canaries_publish(project: Project, root: Path) -> tuple[Project, Any]:
    from etl.pipeline import run_merge
    from publish.build import publish

    run_merge(project)
    planted = _canary_master(project, root / "data" / "canary")
    assert sum(planted.values()) > 1000, planted
    cfg = project.config.model_copy(update={"merged_dir": str(root / "data" / "canary")})
    project = Project(root=project.root, config=cfg, specs=project.specs,
                      codelists=project.codelists, spec_hashes=project.spec_hashes)
    return project, publish(project)


def canary_hits(text: str) -> list[str]:
    return sorted(set(re.findall(r"CANARY-[\w-]+", text)))[:5]


def pick_parcel(store: Path, project: Project | None = None) -> dict[str, Any]:
    """A parcel with a branch number ("123-4") near the middle of the sewer network, within
    45 m of a pipe of every main (a pipe layer that is not a service connection), found by the
    roles of ``project`` (default: the repository's, Uozu)."""
    project = project or load_project(REPO)
    sr = sheet_roles(project)
    assert sr is not None and sr.parcel.map.parcel is not None
    keys = sr.parcel.map.parcel
    plane = project.config.target_crs
    df = pyogrio.read_dataframe(store, layer=sr.parcel.id)
    df = df[df[keys.chiban_field].str.fullmatch(r"\d+-\d+", na=False)]
    sewer = [s.id for s in sr.pipes if s.map.pipe is not None and s.map.pipe.utility == "sewer"]
    pipes = pyogrio.read_dataframe(store, layer=sewer[0]).to_crs(plane)
    c = pipes.geometry.union_all().centroid
    centres = df.geometry.to_crs(plane).centroid
    for spec in mains(sr):
        near = pyogrio.read_dataframe(store, layer=spec.id).to_crs(plane).union_all()
        centres = centres[centres.distance(near) <= 45.0]
    d = centres.distance(c)
    row = df.loc[d.idxmin()]
    return {"fid": row["fid"], "oaza": row[keys.oaza_field], "chiban": row[keys.chiban_field],
            "geometry": row.geometry}


def mains(sr: Any) -> list[Any]:
    """The pipe layers of the sheet that are mains (not a parcel's service connection)."""
    return [p for p in sr.pipes if p.map.serves is None]


def fullwidth(s: str) -> str:
    """"123-4" -> "１２３－４" (the variant users type on Japanese keyboards)."""
    return s.translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))


#: the two example cities: what is city-independent runs on both
CITIES = ["uozu", "takamatsu"]


@pytest.fixture(scope="module", params=CITIES)
def published(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Project, Any]:
    build = {"uozu": build_canary_project, "takamatsu": build_canary_takamatsu}[request.param]
    return build(tmp_path_factory.mktemp(f"sheet-{request.param}"))


@pytest.fixture(scope="module")
def parcel(published: tuple[Project, Any]) -> dict[str, Any]:
    return pick_parcel(published[1].store, published[0])


@pytest.fixture(scope="module")
def sheet(published: tuple[Project, Any], parcel: dict[str, Any],
          tmp_path_factory: pytest.TempPathFactory) -> Any:
    project, res = published
    out = tmp_path_factory.mktemp("pdf") / "sheet.pdf"
    return render_pipe_sheet(project, res.store, oaza=parcel["oaza"],
                             chiban=fullwidth(parcel["chiban"]), scale=500, paper="A4",
                             out=out, map_url=MAP_URL)


# ---------------------------------------------------------------------------------------------
# PDF parsing helpers
# ---------------------------------------------------------------------------------------------

def _hex_rgb(h: str) -> tuple[float, float, float]:
    return tuple(int(h[i:i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def drawing_ops(path: Path) -> list[tuple[list[Any], bytes]]:
    reader = PdfReader(path)
    page = reader.pages[0]
    return list(ContentStream(page.get_contents(), reader).operations)


def filled_paths(path: Path, rgb: tuple[float, float, float]) -> list[list[tuple[float, float]]]:
    """Points of every path filled with colour ``rgb`` (no transforms are active for them)."""
    out, pts, fill = [], [], None
    for operands, op in drawing_ops(path):
        if op == b"rg":
            fill = tuple(float(v) for v in operands)
        elif op in (b"m", b"l"):
            pts.append((float(operands[0]), float(operands[1])))
        elif op in (b"f", b"F", b"B", b"b", b"f*", b"B*", b"b*"):
            if fill and all(abs(a - b) < 0.003 for a, b in zip(fill, rgb, strict=True)):
                out.append(pts)
            pts = []
        elif op in (b"S", b"s", b"n"):
            pts = []
    return out


def rects(path: Path) -> list[tuple[float, float, float, float]]:
    return [tuple(float(v) for v in operands) for operands, op in drawing_ops(path)  # type: ignore[misc]
            if op == b"re"]


def pdf_text(path: Path) -> str:
    reader = PdfReader(path)
    meta = " ".join(str(v) for v in (reader.metadata or {}).values())
    return "\n".join(p.extract_text() for p in reader.pages) + "\n" + meta


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("paper", "size"), [
    ("A4", (595.28, 841.89)), ("A3", (841.89, 1190.55)),
    ("A4-landscape", (841.89, 595.28)), ("A3-landscape", (1190.55, 841.89)),
])
def test_map_page_then_tables_on_the_requested_paper(published: tuple[Project, Any],
                                                      parcel: dict[str, Any], tmp_path: Path,
                                                      paper: str,
                                                      size: tuple[float, float]) -> None:
    project, res = published
    r = render_pipe_sheet(project, res.store, oaza=parcel["oaza"], chiban=parcel["chiban"],
                          paper=paper, out=tmp_path / "s.pdf", map_url=MAP_URL)
    reader = PdfReader(r.path)
    assert len(reader.pages) == r.pages >= 2  # the map, then the tables
    for page in reader.pages:
        box = page.mediabox
        w, h = float(box.width), float(box.height)
        assert (w, h) == pytest.approx(size, abs=0.05)
    base, landscape = parse_paper(paper)
    assert (w > h) == landscape and base in paper
    assert "φ" in reader.pages[0].extract_text()  # the map page comes first


def test_tables_print_every_pipe_of_the_frame_with_its_columns(
        sheet: Any, published: tuple[Project, Any]) -> None:
    """The PDF's tables hold what sheet_table computed (checked against the store in
    test_answers_e2e): each table's heading, column headings and every row's id and values."""
    reader = PdfReader(sheet.path)
    text = re.sub(r"\s+", " ", "\n".join(p.extract_text() for p in reader.pages[1:]))
    assert text.startswith(f"管路一覧 {sheet.oaza} {sheet.chiban}")
    pipes = [t for t in sheet.tables if t.header[-1]["ja"] == "図内の延長 (m)"]
    sr = sheet_roles(published[0])
    assert sr is not None
    assert len(pipes) == len(sr.pipes) and sum(len(t.rows) for t in pipes) > 0
    for t in sheet.tables:
        assert t.title["ja"] in text
        for h in t.header:
            assert h["ja"] in text
        for row in t.rows:
            assert " ".join(row) in text, row
    assert "管径" in text and "布設年度" in text and "土被り" in text
    assert "試掘" in text  # the note: cover depths are as recorded


@pytest.mark.parametrize(("scale", "bar_m"), [(500, 10.0), (1000, 20.0)])
def test_scale_bar_matches_the_scale(published: tuple[Project, Any], parcel: dict[str, Any],
                                     tmp_path: Path, scale: int, bar_m: float) -> None:
    project, res = published
    r = render_pipe_sheet(project, res.store, oaza=parcel["oaza"], chiban=parcel["chiban"],
                          scale=scale, out=tmp_path / "s.pdf", map_url=MAP_URL)
    expected_pt = bar_m * 1000.0 / scale * MM  # 10 m at 1/500 = 20 mm = 56.69 pt
    assert r.layout.bar_m == bar_m
    assert r.layout.bar_pt == pytest.approx(expected_pt, abs=1e-9)
    assert expected_pt == pytest.approx(56.6929, abs=1e-3)
    # stated in the text ...
    text = pdf_text(r.path)
    assert f"{bar_m:g} m = 20.00 mm = 56.69 pt" in text
    assert f"1/{scale}" in text and f"1:{scale}" in text
    # ... and drawn: the bar is one stroked rectangle of exactly that width at the bar's origin
    x, y = r.layout.bar_xy
    bars = [rc for rc in rects(r.path) if rc[0] == pytest.approx(x, abs=0.01)
            and rc[1] == pytest.approx(y, abs=0.01)
            and rc[2] == pytest.approx(expected_pt, abs=0.01)
            and rc[3] == pytest.approx(r.layout.bar_h, abs=0.01)]
    assert bars, "no scale-bar rectangle of the stated length"


def test_parcel_is_drawn_at_true_scale(sheet: Any, parcel: dict[str, Any],
                                       published: tuple[Project, Any]) -> None:
    """The highlighted parcel's outline on paper = its outline in the city's plane zone (the
    project's ``target_crs``) x 1000/scale mm."""
    geom = gpd_to_plane(parcel["geometry"], published[0].config.target_crs)
    paths = filled_paths(sheet.path, _hex_rgb(TARGET_FILL))
    assert paths, "highlighted parcel not found in the drawing"
    xs = [p[0] for path in paths for p in path]
    ys = [p[1] for path in paths for p in path]
    e0, n0, e1, n1 = geom.bounds
    k = 1000.0 / 500 * MM
    assert sheet.layout.pt_per_m == pytest.approx(k)
    assert max(xs) - min(xs) == pytest.approx((e1 - e0) * k, abs=0.02)
    assert max(ys) - min(ys) == pytest.approx((n1 - n0) * k, abs=0.02)
    # and it sits where the layout says (the frame is centred on the parcel)
    assert (min(xs), min(ys)) == pytest.approx(sheet.layout.to_page(e0, n0), abs=0.02)
    fx, _, fw, _ = sheet.layout.frame
    assert (min(xs) + max(xs)) / 2 == pytest.approx(fx + fw / 2, abs=0.05)


def gpd_to_plane(geom: Any, plane: str) -> Any:
    import geopandas as gpd

    return gpd.GeoSeries([geom], crs="EPSG:4326").to_crs(plane).iloc[0]


def test_text_has_parcel_date_stamp_disclaimer_and_link(sheet: Any, parcel: dict[str, Any],
                                                        published: tuple[Project, Any]) -> None:
    text = pdf_text(sheet.path)
    assert sheet.chiban == parcel["chiban"] and sheet.oaza == parcel["oaza"]
    assert f"大字 {parcel['oaza']}" in text and f"地番 {parcel['chiban']}" in text
    dates = {lay.data_date for lay in published[1].layers.values() if lay.data_date}
    assert dates and any(d in text for d in dates)
    assert "データ時点" in text and "Data as of" in text
    assert "参考図" in text and "REFERENCE ONLY" in text
    ja_flat, en_flat = text.replace("\n", ""), text.replace("\n", " ")
    # the notice: the city's terms of use where it has them, else the generic one
    terms = published[0].config.publish.terms
    notice = (MESSAGES["sheet_notice_default"] if terms is None else
              ("".join(p.ja for p in terms.paragraphs), " ".join(p.en for p in terms.paragraphs)))
    assert notice[0][:24] in ja_flat and notice[1][:24] in en_flat
    if terms is None:
        assert "工事・設計・不動産取引" in ja_flat and "Reference only" in en_flat
    # the city's plane zone as pyproj names it, and in Japanese from the zone number
    plane = published[0].config.target_crs
    crs = CRS.from_user_input(plane)
    zone = re.fullmatch(r"JGD2011 / Japan Plane Rectangular CS ([IVX]+)", crs.name)
    assert zone, crs.name
    flat = re.sub(r"\s+", " ", text)
    assert f"{crs.name} ({plane})" in flat
    assert f"平面直角座標系 第{zone.group(1)}系" in flat
    other = {"EPSG:6675", "EPSG:6672"} - {plane}
    assert not [o for o in other if o in flat]
    e0, n0, e1, n1 = sheet.layout.extent
    assert re.search(rf"X={n0:,.1f}\s+Y={e0:,.1f}", text), "lower-left corner (X north, Y east)"
    assert re.search(rf"X={n1:,.1f}\s+Y={e1:,.1f}", text), "upper-right corner"
    assert sheet.url.startswith(MAP_URL + "#map=18/")
    sr = sheet_roles(published[0])
    assert sr is not None
    sewer = [p.id for p in sr.pipes if p.map.pipe is not None and p.map.pipe.utility == "sewer"]
    assert "chiban=" in sheet.url and sum(sheet.counts.get(lid, 0) for lid in sewer) > 0
    # 管径・管種 labels of each main, as its spec's label template writes them
    assert len(mains(sr)) == 2
    for spec in mains(sr):
        assert re.search(label_pattern(spec), text), (spec.id, "no 管径・管種 labels")


def label_pattern(spec: Any) -> str:
    """A regex for the Japanese labels a pipe layer's ``labels.template`` draws (a coded field's
    ``{field.label:.1}`` is its label's first character, a plain ``{field}`` its value)."""
    template = spec.map.labels.template.ja
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)(?:\.label)?(?::\.(\d+))?\}", template):
        out += re.escape(template[pos:m.start()])
        n = m.group(2)
        out += (rf"\S{{{n}}}" if n else r"\d+" if m.group(1) == spec.map.pipe.diameter_field
                else r"\S+")
        pos = m.end()
    return (out + re.escape(template[pos:])).replace(re.escape(" "), r"\s*")


@pytest.mark.parametrize("variant", ["{m}-{b}", "{fm}－{fb}", "{m}番{b}", "{m}の{b}",
                                     "{m}番地{b}", " {fm}ー{fb} "])
def test_chiban_variants_find_the_same_parcel(published: tuple[Project, Any],
                                              parcel: dict[str, Any], tmp_path: Path,
                                              variant: str) -> None:
    project, res = published
    m, b = parcel["chiban"].split("-")
    raw = variant.format(m=m, b=b, fm=fullwidth(m), fb=fullwidth(b))
    norm = apply_normalizer("chiban", pd.Series([raw]))[""].iloc[0]
    assert norm == parcel["chiban"]
    r = render_pipe_sheet(project, res.store, oaza=f" {parcel['oaza']} ", chiban=raw,
                          out=tmp_path / "v.pdf", map_url=MAP_URL)
    assert r.parcel_ids == [parcel["fid"]]


def test_unknown_parcel_is_a_clear_bilingual_error(published: tuple[Project, Any],
                                                   parcel: dict[str, Any], tmp_path: Path
                                                   ) -> None:
    project, res = published
    with pytest.raises(PipeSheetError) as e:
        make_pipe_sheet(project, res.store, oaza=parcel["oaza"], chiban="99999-9",
                        out=tmp_path / "x.pdf", map_url=MAP_URL)
    assert isinstance(e.value, EtlError)
    msg = str(e.value)
    assert "地番 99999-9" in msg and "does not exist" in msg and parcel["oaza"] in msg
    main = parcel["chiban"].split("-")[0]
    with pytest.raises(PipeSheetError, match="Nearby lots") as e2:
        make_pipe_sheet(project, res.store, oaza=parcel["oaza"], chiban=f"{main}-999",
                        out=tmp_path / "x.pdf", map_url=MAP_URL)
    assert parcel["chiban"] in str(e2.value)  # a close lot is suggested
    with pytest.raises(PipeSheetError, match="town") as e3:
        make_pipe_sheet(project, res.store, oaza=parcel["oaza"] + "X", chiban="1",
                        out=tmp_path / "x.pdf", map_url=MAP_URL)
    assert "大字" in str(e3.value) and parcel["oaza"] in str(e3.value)
    with pytest.raises(PipeSheetError, match="scale 1:600"):
        make_pipe_sheet(project, res.store, oaza=parcel["oaza"], chiban=parcel["chiban"],
                        scale=600, out=tmp_path / "x.pdf", map_url=MAP_URL)
    with pytest.raises(PipeSheetError, match="paper 'B5'"):
        make_pipe_sheet(project, res.store, oaza=parcel["oaza"], chiban=parcel["chiban"],
                        paper="B5", out=tmp_path / "x.pdf", map_url=MAP_URL)
    assert not (tmp_path / "x.pdf").exists()


def test_no_internal_value_reaches_the_store_or_the_pdf(published: tuple[Project, Any],
                                                        sheet: Any, tmp_path: Path) -> None:
    project, res = published
    # the master really is full of canaries (so the checks below can fail): an internal text
    # field of a pipe layer, and the ids of the rows a pipe layer's public filter withholds
    master = project.merged_dir / "master.gpkg"
    sr = sheet_roles(project)
    assert sr is not None
    internal = {(p.id, c.name) for p in sr.pipes for c in output_columns(p)
                if c.visibility != "public" and c.type == "str"
                and c.name not in (p.public_filter or "")}
    filtered = [p for p in sr.pipes if p.public_filter]
    assert internal and filtered
    con = sqlite3.connect(master)
    try:
        assert any(con.execute(f'SELECT count(*) FROM "{lid}" WHERE "{col}" LIKE '
                               "'CANARY-%'").fetchone()[0] > 0 for lid, col in internal)
        for p in filtered:
            assert con.execute(f'SELECT count(*) FROM "{p.id}" WHERE "{p.id_field}" '
                               "LIKE 'CANARY-WITHHELD-%'").fetchone()[0] > 0, p.id
    finally:
        con.close()
    dump = "\n".join(sqlite3.connect(res.store).iterdump())
    assert canary_hits(dump) == []
    assert canary_hits(pdf_text(sheet.path)) == []
    # a 1/1000 A3 sheet covers far more pipes; still nothing internal
    big = make_pipe_sheet(project, res.store, oaza=sheet.oaza, chiban=sheet.chiban, scale=1000,
                          paper="A3", out=tmp_path / "big.pdf", map_url=MAP_URL)
    assert canary_hits(pdf_text(big)) == []
    assert canary_hits(big.read_bytes().decode("latin-1")) == []


def test_process_plugin_through_pygeoapi(published: tuple[Project, Any],
                                         parcel: dict[str, Any]) -> None:
    """POST /api/processes/pipe-sheet/execution on the public app serving the release."""
    from publish.server.app import create_app

    project, res = published
    cfg = yaml.safe_load(res.config.read_text(encoding="utf-8"))
    assert "pipe-sheet" in cfg["resources"], "the roles exist: the process is registered"
    client = create_app(project).test_client()
    oas = client.get("/api/openapi?f=json").get_json()
    assert "/processes/pipe-sheet/execution" in oas["paths"]
    desc = client.get("/api/processes/pipe-sheet?f=json")
    assert desc.status_code == 200
    assert set(desc.get_json()["inputs"]) == {"oaza", "chiban", "scale", "paper"}
    ok = client.post("/api/processes/pipe-sheet/execution", json={"inputs": {
        "oaza": parcel["oaza"], "chiban": fullwidth(parcel["chiban"]), "scale": 1000,
        "paper": "A4"}})
    assert ok.status_code == 200
    assert ok.headers["Content-Type"].startswith("application/pdf")
    assert ok.data.startswith(b"%PDF")
    with tempfile.TemporaryDirectory() as d:
        pdf = Path(d) / "p.pdf"
        pdf.write_bytes(ok.data)
        assert f"地番 {parcel['chiban']}" in pdf_text(pdf)
    logging.disable(logging.CRITICAL)  # the manager logs user errors
    try:
        bad = client.post("/api/processes/pipe-sheet/execution", json={"inputs": {
            "oaza": parcel["oaza"], "chiban": "99999"}})
        missing = client.post("/api/processes/pipe-sheet/execution",
                              json={"inputs": {"oaza": parcel["oaza"]}})
    finally:
        logging.disable(logging.NOTSET)
    assert bad.status_code == 400
    desc_text = json.loads(bad.data)["description"]
    assert "はありません" in desc_text and "does not exist" in desc_text
    assert str(res.path) not in bad.get_data(as_text=True)
    assert missing.status_code == 400 and "chiban" in json.loads(missing.data)["description"]


def test_errors_never_name_a_server_path(published: tuple[Project, Any], parcel: dict[str, Any],
                                         tmp_path: Path) -> None:
    """Messages reach API clients: they name the parcel and the fix, never a file."""
    project, res = published
    missing = tmp_path / "srv" / "releases" / "x" / "public.gpkg"
    with pytest.raises(PipeSheetError) as e:
        make_pipe_sheet(project, missing, oaza=parcel["oaza"], chiban=parcel["chiban"],
                        out=tmp_path / "x.pdf", map_url=MAP_URL)
    assert str(e.value) == text("sheet_store_missing")
    for chiban in ("99999-9", "abc"):
        with pytest.raises(PipeSheetError) as e:
            make_pipe_sheet(project, res.store, oaza=parcel["oaza"], chiban=chiban,
                            out=tmp_path / "x.pdf", map_url=MAP_URL)
        assert str(res.path) not in str(e.value) and "/" not in str(e.value).split(" / ")[0]


def test_sheet_in_another_plane_zone(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A town in zone VIII (EPSG:6676) with its own layer ids: its zone, its metres."""
    from map_variant import CRS, E0, N0, build_variant

    project, res = build_variant(tmp_path_factory.mktemp("zone8"))
    assert project.config.target_crs == CRS == "EPSG:6676"
    url = "http://127.0.0.1:5000/maps/kanro.html"
    r = render_pipe_sheet(project, res.store, oaza="本郷", chiban="１２－１", scale=500,
                          out=tmp_path_factory.mktemp("pdf8") / "s.pdf", map_url=url)
    text8 = pdf_text(r.path)
    flat = re.sub(r"\s+", " ", text8)
    assert "JGD2011 / Japan Plane Rectangular CS VIII (EPSG:6676)" in flat
    assert "平面直角座標系 第VIII系" in flat and "EPSG:6675" not in flat and "第VII系" not in flat
    # lot 12-1 is box(E0+61, N0+1, E0+89, N0+24) in zone VIII metres: the frame is centred on
    # it, the corners are zone VIII coordinates, and it is drawn at 1000/500 mm per metre
    assert r.parcel_ids == ["H20"]
    assert r.layout.center == pytest.approx((E0 + 75.0, N0 + 12.5), abs=0.02)
    e0, n0, e1, n1 = r.layout.extent
    assert re.search(rf"X={n0:,.1f}\s+Y={e0:,.1f}", text8)
    assert re.search(rf"X={n1:,.1f}\s+Y={e1:,.1f}", text8)
    paths = filled_paths(r.path, _hex_rgb(TARGET_FILL))
    xs = [p[0] for path in paths for p in path]
    ys = [p[1] for path in paths for p in path]
    k = 1000.0 / 500 * MM
    assert max(xs) - min(xs) == pytest.approx(28.0 * k, abs=0.05)
    assert max(ys) - min(ys) == pytest.approx(23.0 * k, abs=0.05)
    assert (min(xs), min(ys)) == pytest.approx(r.layout.to_page(E0 + 61.0, N0 + 1.0), abs=0.05)
    # its layers by role, its colours and labels (from its specs and code lists)
    assert r.counts["hikki"] > 1 and r.counts["kanro_gesui"] > 0 and r.counts["kanro_josui"] > 0
    assert "大字 本郷" in text8 and "地番 12-1" in text8 and "見本町" in text8
    assert re.search(r"汚φ200 VU", text8) and re.search(r"上φ1\d\d", text8)
    assert "下水 汚水 Sanitary" in flat and "下水 雨水 Storm" in flat
    assert "見本町の管路図は参考図です" in flat  # its terms of use are the sheet's notice
    assert r.url.startswith(url + "#map=18/")
