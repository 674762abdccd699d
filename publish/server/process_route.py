"""pygeoapi process ``walk-route``: the nearest shelters for a hazard, by walking, with routes.

Registered per release in the generated pygeoapi config (see :func:`process_resource`)::

    walk-route:
      type: process
      processor:
        name: publish.server.process_route.WalkRouteProcessor
        graph: <release>/walk_graph.npz        # built at publish (publish.build.routing)
        example: {lon: ..., lat: ..., kind: ...}

Execution (pygeoapi 0.21 executes with POST)::

    POST /api/processes/walk-route/execution
    {"inputs": {"lon": <lon>, "lat": <lat>, "kind": "flood"}}   (the description's example
    is a point of the city, made at publish: routing.example_inputs)
    -> 200 application/json: a GeoJSON FeatureCollection, one LineString (CRS84) per shelter,
       nearest first, with distance_m, walk_min, steps (text directions, ja/en); "notes" say
       what the walker must know (separate network parts, unreachable nearer shelters, gaps)
    -> 400 {"description": "<ja> / <en>"} for a point off the network, an unknown kind, ...

The graph file is read once per worker and per release (a new release is a new path).
"""

from __future__ import annotations

import copy
import math
import threading
from pathlib import Path
from typing import Any

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from config.messages import text
from publish.build.routing import (
    PROCESS_ID,
    RoutingError,
    WalkGraph,
    load_graph,
    nearest_shelters,
    process_resource,
)

__all__ = ["PROCESS_ID", "WalkRouteProcessor", "process_resource"]
MAX_RESULTS = 10

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": PROCESS_ID,
    "title": {"ja": "避難場所までの徒歩経路", "en": "Walking route to shelters"},
    "description": {
        "ja": "地点と災害の種類を指定すると、その災害に対応する避難場所のうち歩いて近い順に"
              "（既定 3 か所）、道路に沿った経路・距離・徒歩時間と道順を返します。",
        "en": "Given a point and a hazard kind, returns the shelters designated for that hazard "
              "nearest on foot (3 by default), each with the route along the roads, its "
              "distance, the walking time and text directions.",
    },
    "jobControlOptions": ["sync-execute"],
    "outputTransmission": ["value"],
    "keywords": ["避難", "避難場所", "経路", "evacuation", "shelter", "route"],
    "links": [],
    "inputs": {
        "lon": {"title": {"ja": "経度", "en": "Longitude"},
                "schema": {"type": "number", "minimum": -180, "maximum": 180},
                "minOccurs": 1, "maxOccurs": 1},
        "lat": {"title": {"ja": "緯度", "en": "Latitude"},
                "schema": {"type": "number", "minimum": -90, "maximum": 90},
                "minOccurs": 1, "maxOccurs": 1},
        "kind": {"title": {"ja": "災害の種類", "en": "Hazard kind"},
                 "description": {"ja": "例: flood, tsunami, landslide, earthquake",
                                 "en": "e.g. flood, tsunami, landslide, earthquake"},
                 "schema": {"type": "string", "maxLength": 40},
                 "minOccurs": 1, "maxOccurs": 1},
        "n": {"title": {"ja": "件数", "en": "Number of shelters"},
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS},
              "minOccurs": 0, "maxOccurs": 1},
        "speed": {"title": {"ja": "歩く速さ (m/秒)", "en": "Walking speed (m/s)"},
                  "description": {"ja": "既定は市の設定 (例: 1.0)。高齢の方は 0.5 など",
                                  "en": "default: the city's setting (e.g. 1.0); 0.5 for "
                                        "someone who walks slowly"},
                  "schema": {"type": "number", "minimum": 0.2, "maximum": 3},
                  "minOccurs": 0, "maxOccurs": 1},
    },
    "outputs": {
        "routes": {
            "title": {"ja": "経路", "en": "Routes"},
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
        },
    },
}

_GRAPHS: dict[str, WalkGraph] = {}
_LOCK = threading.Lock()


def _graph(path: str) -> WalkGraph:
    """Load a release's graph once per worker (pygeoapi builds a processor per request)."""
    with _LOCK:
        g = _GRAPHS.get(path)
        if g is None:
            _GRAPHS.clear()  # one release at a time: the previous one's graph is dropped
            g = _GRAPHS[path] = load_graph(Path(path))
        return g


def _number(data: dict[str, Any], key: str, lo: float, hi: float, *,
            required: bool = True) -> float | None:
    v = data.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise ProcessorExecuteError(user_msg=text("err_input_missing", key=key))
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ProcessorExecuteError(user_msg=text("err_input_invalid", key=key)) from None
    if isinstance(v, bool) or not math.isfinite(f) or not lo <= f <= hi:
        raise ProcessorExecuteError(user_msg=text("err_input_invalid", key=key))
    return f


class WalkRouteProcessor(BaseProcessor):
    """OGC API - Processes wrapper of :func:`publish.build.routing.nearest_shelters`."""

    def __init__(self, processor_def: dict[str, Any]) -> None:
        meta = copy.deepcopy(PROCESS_METADATA)
        if processor_def.get("example"):  # a point of this city (made at publish)
            meta["example"] = {"inputs": dict(processor_def["example"])}
        super().__init__(processor_def, meta)
        self.graph_path = str(processor_def["graph"])

    def execute(self, data: dict[str, Any], outputs: Any = None) -> tuple[str, dict[str, Any]]:
        """Inputs -> (``application/json``, FeatureCollection); user errors -> bilingual 400."""
        lon = _number(data, "lon", -180, 180)
        lat = _number(data, "lat", -90, 90)
        kind = data.get("kind")
        if not isinstance(kind, str) or not kind.strip() or len(kind) > 40:
            raise ProcessorExecuteError(user_msg=text("err_input_missing", key="kind"))
        n = _number(data, "n", 1, MAX_RESULTS, required=False)
        speed = _number(data, "speed", 0.2, 3, required=False)
        graph = _graph(self.graph_path)
        try:
            answer = nearest_shelters(graph, float(lon or 0), float(lat or 0), kind.strip(),
                                      n=int(n) if n else None, speed_mps=speed)
        except RoutingError as e:
            raise ProcessorExecuteError(user_msg=str(e)) from e
        return "application/json", answer.geojson(graph)

    def __repr__(self) -> str:
        return f"<WalkRouteProcessor> {self.graph_path}"
