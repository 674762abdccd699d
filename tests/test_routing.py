"""Walking routes: a hand-made graph with known answers; snapping, separate parts, links; the
pygeoapi process; and the embedded router against pgRouting on the sample city."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import make_uozu_project
from publish_fixtures import isolated_site_builders
from pygeoapi.plugin import load_plugin
from pygeoapi.process.base import ProcessorExecuteError
from pyproj import Transformer
from shapely.geometry import LineString, Point
from sqlalchemy import text as sql
from stores import set_store_in_file

from config import Project, load_project
from config.i18n import langs
from config.messages import both, text
from config.models import RoutingConfig
from etl.pipeline import run_merge
from etl.stores.postgis import connect, make_engine, table_names
from publish.build import public_store, publish, routing
from publish.model import ID_COLUMN
from publish.server.process_route import PROCESS_ID, process_resource

CRS = "EPSG:6675"
E0, N0 = 21600.0, 91800.0
TO_LONLAT = Transformer.from_crs(CRS, "OGC:CRS84", always_xy=True)


def lonlat(x: float, y: float) -> tuple[float, float]:
    """A point given in metres from (E0, N0), as the API receives it."""
    lon, lat = TO_LONLAT.transform(E0 + x, N0 + y)
    return float(lon), float(lat)


def L(*pts: tuple[float, float]) -> LineString:
    return LineString([(E0 + x, N0 + y) for x, y in pts])


def shelters(rows: list[tuple[str, str, float, float, bool, bool]]) -> gpd.GeoDataFrame:
    """(fid, name, x, y, flood, tsunami) -> a shelter frame in the graph CRS."""
    return gpd.GeoDataFrame(
        {ID_COLUMN: [r[0] for r in rows], "name": [r[1] for r in rows],
         "hz_flood": [r[4] for r in rows], "hz_tsunami": [r[5] for r in rows]},
        geometry=[Point(E0 + r[2], N0 + r[3]) for r in rows], crs=CRS)


FLAGS = {"flood": "hz_flood", "tsunami": "hz_tsunami"}

#   D(0,100) ──────── E(100,100)
#   │                   ╲
#   │                    ╲ (diagonal, 141.4 m)
#   A(0,0) ── B(100,0) ── C(200,0)        the street A–C is ONE line; B is where
#              │                          the side street B–F ends on it (a T-junction)
#              F(100,-80)
STREETS = [
    (L((0, 0), (200, 0)), "本通り"),
    (L((100, -80), (100, 0)), "南通り"),
    (L((0, 0), (0, 100)), "西通り"),
    (L((0, 100), (100, 100)), "北通り"),
    (L((100, 100), (200, 0)), "斜め通り"),
]


def hand_graph(extra: list[tuple[LineString, str]] | None = None, *, bridge_m: float = 0.0,
               rows: list[tuple[str, str, float, float, bool, bool]] | None = None,
               snap_m: float = 50.0) -> routing.WalkGraph:
    lines = STREETS + (extra or [])
    g = routing.build_graph([x for x, _ in lines], [n for _, n in lines], CRS,
                            junction_m=0.5, bridge_m=bridge_m)
    rows = rows if rows is not None else [
        ("S1", "東小学校", 200, -10, True, False),   # 10 m south of C
        ("S2", "北公民館", 50, 110, True, True),     # 10 m north of the middle of D–E
        ("S3", "南公園", 110, -80, False, True),     # 10 m east of F
    ]
    g = routing.place_shelters(g, [("shelter", shelters(rows), "name", FLAGS)], snap_m)
    g.meta.update({"snap_m": snap_m, "walk_speed_mps": 1.0, "results": 3})
    return g


def test_hand_graph_nodes_t_junction_and_parts() -> None:
    g = hand_graph()
    # A, B (split of the one A–C line), C, D, E, F
    assert g.n_nodes == 6 and g.n_edges == 6 and g.parts == 1
    assert sorted(np.round(g.edge_len, 3).tolist()) == [80.0, 100.0, 100.0, 100.0, 100.0,
                                                       round(math.hypot(100, 100), 3)]
    assert set(g.edge_name.tolist()) == {"本通り", "南通り", "西通り", "北通り", "斜め通り"}


def test_known_shortest_path_distance_and_time() -> None:
    g = hand_graph()
    # Start 5 m south of (20,0) on 本通り; flood shelters: S1 (by C) and S2 (on D–E).
    ans = routing.nearest_shelters(g, *lonlat(20, -5), "flood", speed_mps=1.25)
    assert [r.fid for r in ans.routes] == ["S2", "S1"]
    s2, s1 = ans.routes
    # S2: 5 off + 20 back to A + 100 (A–D) + 50 (half of D–E) + 10 off = 185 m
    assert s2.metres == pytest.approx(185.0, abs=1e-6)
    assert s2.network_m == pytest.approx(170.0, abs=1e-6)
    # S1: 5 + 180 along 本通り + 10 = 195 m (the way round by D, E is 20+100+100+141.4)
    assert s1.metres == pytest.approx(195.0, abs=1e-6)
    assert s1.seconds == pytest.approx(195.0 / 1.25)


def test_route_order_geometry_and_directions() -> None:
    g = hand_graph()
    ans = routing.nearest_shelters(g, *lonlat(150, -5), "flood")
    # from (150,-5): S1 = 5 + 50 + 10 = 65; S2 = 5 + 150 + 100 + 50 + 10 = 315 or via the
    # diagonal 5 + 50 + 141.42 + 50 + 10 = 256.42
    assert [r.fid for r in ans.routes] == ["S1", "S2"]
    assert ans.routes[0].metres == pytest.approx(65.0, abs=1e-6)
    s2 = ans.routes[1]
    assert s2.metres == pytest.approx(5 + 50 + math.hypot(100, 100) + 50 + 10, abs=1e-6)
    feat = s2.geojson(g)
    coords = np.array(feat["geometry"]["coordinates"])
    x, y = Transformer.from_crs("OGC:CRS84", CRS, always_xy=True).transform(coords[:, 0],
                                                                             coords[:, 1])
    pts = np.round(np.column_stack([np.asarray(x) - E0, np.asarray(y) - N0]), 1)  # 7 decimals
    assert pts.tolist() == [[150, -5], [150, 0], [200, 0], [100, 100], [50, 100], [50, 110]]
    props = feat["properties"]
    assert props["distance_m"] == round(s2.metres, 1)
    assert props["walk_min"] == 5  # 256.4 m at 1.0 m/s
    assert [(s["turn"], s["name"], s["m"]) for s in props["steps"]] == [
        ("start", "本通り", 50), ("left", "斜め通り", 141), ("left", "北通り", 50),
        ("arrive", "北公民館", 10)]
    assert props["steps"][2]["text"] == {
        "ja": "左に曲がり、北通りを約 50 m 進む", "en": "Turn left onto 北通り for about 50 m"}
    assert ans.notes == []


def test_same_street_piece_goes_straight_along_it() -> None:
    g = hand_graph(rows=[("S9", "中央広場", 120, 4, True, False)])
    ans = routing.nearest_shelters(g, *lonlat(160, -3), "flood")
    assert ans.routes[0].metres == pytest.approx(3 + 40 + 4, abs=1e-6)


def test_parallel_streets_take_the_shorter_not_the_sum() -> None:
    # a long curved street also joining D and E (260 m): the straight 100 m one counts
    curve = (L((0, 100), (50, 200), (100, 100)), "裏通り")
    g = hand_graph([curve])
    ans = routing.nearest_shelters(g, *lonlat(0, 50), "tsunami")
    assert ans.routes[0].fid == "S2"
    assert ans.routes[0].metres == pytest.approx(50 + 50 + 10, abs=1e-6)


def test_snapping_limit_says_how_far_the_road_is() -> None:
    g = hand_graph()
    with pytest.raises(routing.RoutingError) as e:
        routing.nearest_shelters(g, *lonlat(100, -300), "flood")
    assert str(e.value) == text("route_snap_far", limit=50, dist=220)
    assert str(e.value).startswith("この地点から 50 m 以内に地図上の道路がありません")


def test_unknown_kind_and_no_designated_shelter() -> None:
    g = hand_graph(rows=[("S1", "東小学校", 200, -10, True, False)])
    with pytest.raises(routing.RoutingError) as e:
        routing.nearest_shelters(g, *lonlat(20, 0), "volcano")
    assert str(e.value) == text("route_unknown_kind", kind="volcano", known="flood, tsunami")
    with pytest.raises(routing.RoutingError) as e:
        routing.nearest_shelters(g, *lonlat(20, 0), "tsunami")
    assert str(e.value) == text("route_no_shelter", kind="津波", kind_en="Tsunami")


ISLAND = [(L((400, 0), (500, 0)), "離れ通り"), (L((500, 0), (500, 100)), "離れ北通り")]


def test_separate_part_is_said_not_hidden() -> None:
    rows = [("S1", "東小学校", 200, -10, True, False), ("S6", "島の集会所", 450, 8, False, True)]
    g = hand_graph(ISLAND, rows=rows)
    assert g.parts == 2 and g.part_sizes() == [6, 3]
    assert g.summary()["parts"] == 2
    assert g.summary()["message"] == both("route_graph_summary", nodes=9, edges=8, parts=2,
                                          largest=6)
    # from the island, tsunami: S6 is on the island itself -> routed; flood: S1 is on the
    # mainland only -> said, with the nearest one as the crow flies
    ans = routing.nearest_shelters(g, *lonlat(480, -5), "tsunami")
    assert [r.fid for r in ans.routes] == ["S6"]
    with pytest.raises(routing.RoutingError) as e:
        routing.nearest_shelters(g, *lonlat(480, -5), "flood")
    assert str(e.value) == text("route_disconnected", kind="洪水", kind_en="Flood",
                                name="東小学校", dist=280, parts=2)


def test_nearer_shelter_on_another_part_is_named_in_the_notes() -> None:
    rows = [("S1", "東小学校", 200, -10, True, False),
            ("S7", "島の集会所", 400, 3, True, False)]
    g = hand_graph(ISLAND, rows=rows)
    ans = routing.nearest_shelters(g, *lonlat(0, 5), "flood")  # at A: S1 200+ m, S7 400 m
    assert [r.fid for r in ans.routes] == ["S1"] and ans.notes == []
    ans = routing.nearest_shelters(g, *lonlat(195, -2), "flood")
    assert [r.fid for r in ans.routes] == ["S1"]
    # from (300,-2) S7 is nearer (100.1 m) than S1 (100.3 m) but on the island
    g2 = hand_graph([*ISLAND, (L((200, 0), (300, 0)), "本通り")], rows=rows)
    ans = routing.nearest_shelters(g2, *lonlat(300, -2), "flood")
    assert [r.fid for r in ans.routes] == ["S1"]
    assert ans.notes == [langs("route_unreachable_part", name="島の集会所", dist=100, n=1,
                              limit=50, parts=2)]


def test_bridge_links_join_parts_and_are_said() -> None:
    rows = [("S7", "島の集会所", 450, 6, True, False)]
    g = hand_graph(ISLAND, rows=rows, bridge_m=250)
    assert g.parts == 1 and int((g.edge_kind == routing.LINK).sum()) == 1
    assert g.summary()["links_m"] == pytest.approx(200.0)
    ans = routing.nearest_shelters(g, *lonlat(190, -2), "flood")
    r = ans.routes[0]
    assert r.metres == pytest.approx(2 + 10 + 200 + 50 + 6, abs=1e-6)
    assert r.links_m == pytest.approx(200.0)
    assert [(s.turn, s.name, round(s.metres)) for s in r.steps] == [
        ("start", "本通り", 10), ("link", "", 200), ("straight", "離れ通り", 50),
        ("arrive", "島の集会所", 6)]
    assert ans.notes == [langs("route_link_note", m=200)]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    g = hand_graph(ISLAND)
    path = routing.save_graph(g, tmp_path / routing.GRAPH_FILE)
    h = routing.load_graph(path)
    for name in ("node_xy", "edge_u", "edge_v", "edge_len", "edge_kind", "edge_name", "offsets",
                 "coords", "node_part"):
        assert np.array_equal(getattr(g, name), getattr(h, name)), name
    assert h.shelters.kinds == ("flood", "tsunami")
    assert h.shelters.fid.tolist() == ["S1", "S2", "S3"]
    a = routing.nearest_shelters(g, *lonlat(150, -5), "flood").geojson(g)
    b = routing.nearest_shelters(h, *lonlat(150, -5), "flood").geojson(h)
    assert a == b


def test_process_through_pygeoapi_plugin_loader(tmp_path: Path) -> None:
    path = routing.save_graph(hand_graph(), tmp_path / routing.GRAPH_FILE)
    res = process_resource(path)
    proc = load_plugin("process", res["processor"])
    lon, lat = lonlat(150, -5)
    mime, out = proc.execute({"lon": lon, "lat": lat, "kind": "flood", "n": 1, "speed": 0.5})
    assert mime == "application/json" and out["type"] == "FeatureCollection"
    assert [f["id"] for f in out["features"]] == ["S1"]
    props = out["features"][0]["properties"]
    assert props["distance_m"] == 65.0 and props["walk_s"] == 130
    assert out["features"][0]["geometry"]["type"] == "LineString"
    with pytest.raises(ProcessorExecuteError) as e:
        proc.execute({"lon": lon, "lat": lat, "kind": "volcano"})
    assert str(e.value.user_msg) == text("route_unknown_kind", kind="volcano",
                                         known="flood, tsunami")
    with pytest.raises(ProcessorExecuteError) as e:
        proc.execute({"lon": "東経", "lat": lat, "kind": "flood"})
    assert e.value.user_msg == text("err_input_invalid", key="lon")
    assert PROCESS_ID == "walk-route"


# ------------------------------------------------------------- the sample city, both stores


@pytest.fixture(scope="module")
def uozu_release(uozu_merged: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[Project, Path]:
    root, _ = uozu_merged
    project = load_project(root)
    assert project.specs["shelter"].map.role == "shelter", "layers/shelter.yml: map.role"
    cfg = project.config.model_copy(update={"public_dir": str(tmp_path_factory.mktemp("pub"))})
    project = Project(project.root, cfg, project.specs, project.codelists, project.spec_hashes)
    with isolated_site_builders():
        res = publish(project)
    return project, res.store


def _starts(graph: routing.WalkGraph, k: int = 10) -> list[tuple[float, float]]:
    """Deterministic points 0-40 m off random streets across the city."""
    rng = np.random.default_rng(16)
    out = []
    for e in rng.choice(graph.n_edges, size=k, replace=False):
        line = graph.lines[e]
        p = shapely.line_interpolate_point(line, float(rng.uniform(0.1, 0.9)), normalized=True)
        x, y = p.x + float(rng.uniform(-25, 25)), p.y + float(rng.uniform(-25, 25))
        lon, lat = graph.to_lonlat.transform(x, y)
        out.append((float(lon), float(lat)))
    return out


@pytest.fixture(scope="module")
def pg_conn(new_pg_db: Any) -> Iterator[Any]:
    url = new_pg_db()
    with connect(make_engine(url), url) as conn:
        yield conn


@pytest.mark.postgis
@pytest.mark.parametrize("bridge_m", [0.0, 150.0])
def test_embedded_and_pgrouting_agree_on_the_sample(uozu_release: tuple[Project, Path],
                                                    pg_conn: Any, bridge_m: float) -> None:
    project, store = uozu_release
    assert routing.network_layers(project) == ["road_segment"]  # map.network: walk
    cfg = RoutingConfig(bridge_m=bridge_m)
    graph = routing.build_release_graph(project, store, cfg)
    assert graph.n_edges >= 1000 and len(graph.shelters.fid) > 20
    assert graph.parts == (8 if bridge_m == 0 else 1)  # the sample's district grids
    schema = f"walk_{int(bridge_m)}"
    with pg_conn.begin():
        assert routing.ensure_pgrouting(pg_conn).startswith("3.")
        pg_conn.execute(sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        counts = routing.write_pg_graph(pg_conn, schema, graph)
    assert counts == {"walk_edges": graph.n_edges, "walk_shelters": len(graph.shelters.fid)}
    srid = int(project.config.target_crs.split(":")[1])
    compared = 0
    for lon, lat in _starts(graph):
        for kind in ("flood", "tsunami", "earthquake"):
            try:
                emb = routing.nearest_shelters(graph, lon, lat, kind).routes
            except routing.RoutingError as e:
                assert e.key == "route_disconnected" and bridge_m == 0
                emb = []
            pgr = routing.pg_nearest_shelters(pg_conn, schema, srid, lon, lat, kind, n=3,
                                              snap_m=cfg.snap_m)
            assert [r.fid for r in pgr] == [r.fid for r in emb], (lon, lat, kind)
            for a, b in zip(emb, pgr, strict=True):
                assert b.metres == pytest.approx(a.metres, abs=0.01)
                # the path pgRouting walks has the same length on the ground
                assert sum(float(graph.edge_len[e]) for e in b.edges) <= a.network_m + 0.01
                compared += 1
    pg_conn.rollback()  # the queries above only read
    assert compared >= 40


@pytest.mark.postgis
def test_postgis_release_holds_the_graph_and_pgrouting_agrees(
        new_pg_db: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """publish on PostGIS: the release schema holds the public layers and the walking graph
    (and nothing else, leak-checked), and pgRouting there agrees with the release's graph."""
    root = make_uozu_project(tmp_path_factory.mktemp("uozu_pg"), scale=0.05)
    url = new_pg_db()
    set_store_in_file(root, url)
    project = load_project(root)
    run_merge(project)
    with isolated_site_builders():
        res = publish(project)
    schema = json.loads((res.path / "release.json").read_text(encoding="utf-8"))["store"]["schema"]
    graph = routing.load_graph(res.path / routing.GRAPH_FILE)
    srid = int(project.config.target_crs.split(":")[1])
    with connect(make_engine(url), url) as conn:
        assert set(table_names(conn, schema)) == {*public_store.expected_tables(project),
                                                  routing.PG_EDGES, routing.PG_SHELTERS}
        n = conn.execute(sql(f'SELECT count(*) FROM "{schema}".{routing.PG_EDGES}')).scalar()
        assert n == graph.n_edges
        compared = 0
        for lon, lat in _starts(graph, 8):
            for kind in ("flood", "tsunami", "earthquake"):
                try:
                    emb = routing.nearest_shelters(graph, lon, lat, kind).routes
                except routing.RoutingError as e:  # a small sample: separate district grids
                    assert e.key == "route_disconnected"
                    emb = []
                pgr = routing.pg_nearest_shelters(conn, schema, srid, lon, lat, kind, n=3,
                                                  snap_m=graph.meta["snap_m"])
                assert [r.fid for r in pgr] == [r.fid for r in emb], (lon, lat, kind)
                for a, b in zip(emb, pgr, strict=True):
                    assert b.metres == pytest.approx(a.metres, abs=0.01)
                    compared += 1
        conn.rollback()
    assert compared >= 30
