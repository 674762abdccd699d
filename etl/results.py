"""Results of the merge stages, shared by the pipeline and the reports (no import cycle)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd

from config.models import LayerSpec


@dataclass
class SourceStats:
    name: str
    file: str
    sha256: str
    crs: str | None
    transform: dict[str, Any] | None
    read: int = 0
    merged: int = 0
    quarantined: int = 0
    by_reason: Counter = field(default_factory=Counter)
    data_date: str | None = None


@dataclass
class LayerResult:
    spec: LayerSpec
    frame: gpd.GeoDataFrame | pd.DataFrame
    quarantine: pd.DataFrame
    sources: list[SourceStats]
    repaired: int = 0
    warnings: list[str] = field(default_factory=list)
    flag_counts: Counter = field(default_factory=Counter)
    unmapped: dict[str, dict[str, int]] = field(default_factory=dict)
    data_date: str | None = None
    change: dict[str, int] | None = None
    problems: list[dict] = field(default_factory=list)  # policy-engine report rows
    epoch: str = ""  # the coordinate epoch of the layer's sources
    over_vertex_budget: int = 0  # features the publication will simplify
    #: features written, once ``frame`` was released after writing (None while it is held)
    written: int | None = None
    #: read, checked and written batch by batch (``frame`` holds only what later layers read)
    streamed: bool = False

    @property
    def features(self) -> int:
        return len(self.frame) if self.written is None else self.written
