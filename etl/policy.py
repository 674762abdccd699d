"""The one policy engine: every record-level problem of a layer goes through :meth:`Ledger.apply`.

Field values (bad value, unknown code, out of range, sentinel, cut text), references (missing,
too far), joins (unmatched), identity (duplicates) and coordinates (swapped axes, outside a
datum grid) all use the same four actions and leave the same traces:

- ``quarantine``: the record goes to ``_quarantine`` with the reason code and a detail;
- ``null``: the value is stored as null and the feature flagged ``<flag>:<field>``;
- ``warn``: the value is kept and the feature flagged;
- ``keep``: the value is kept, unflagged.

Whatever the action, the problem is a row of the layer's report (reason, field, action, count
and an example record), so nothing is handled silently and nothing differently per stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ACTIONS = ("quarantine", "null", "warn", "keep")

#: Quality-flag prefix per reason (short names: they are stored on every flagged feature).
FLAG_NAMES: dict[str, str] = {
    "BAD_VALUE": "bad_value",
    "OUT_OF_RANGE": "out_of_range",
    "UNKNOWN_CODE": "unknown_code",
    "MISSING_REFERENCE": "missing_ref",
    "FAR_FROM_REFERENCE": "far_from",
    "JOIN_UNMATCHED": "join_unmatched",
    "SENTINEL": "sentinel",
    "TRUNCATED_TEXT": "truncated",
    "OUTSIDE_GRID": "outside_grid",
    "DIMENSIONS_DROPPED": "dims_dropped",
}

#: When a record has several quarantine reasons, the first of this order names it (all of them
#: go into the detail): the coordinates first, then the geometry, then the attributes.
REASON_ORDER = ["SWAPPED_AXES", "OUTSIDE_DATUM_GRID", "TRANSFORM_FAILED", "NULL_GEOMETRY",
                "EMPTY_GEOMETRY", "GEOMETRY_TYPE", "INVALID_GEOMETRY", "OUTSIDE_BOUNDARY",
                "TOO_SMALL", "BAD_VALUE", "MISSING_REQUIRED", "UNKNOWN_CODE", "OUT_OF_RANGE",
                "TRUNCATED_TEXT", "MISSING_REFERENCE", "FAR_FROM_REFERENCE", "JOIN_UNMATCHED",
                "DUPLICATE_ID"]
_RANK = {r: i for i, r in enumerate(REASON_ORDER)}


@dataclass
class Problem:
    """Records (``mask``, full length) that break one rule, and what to do about it.

    ``detail`` holds the text of the masked records only (in order), or one text for all.
    """

    mask: np.ndarray
    reason: str
    action: str
    detail: np.ndarray | str
    field: str | None = None
    #: where the rule sits in the layer's order of rules, when the caller knows it better than
    #: the ledger's call count (a source's coordinate problems); see :meth:`Ledger.apply`
    site: tuple | None = None


class Ledger:
    """Quarantine reasons, flags and report rows of one layer's records (length ``n``)."""

    def __init__(self, n: int, records: np.ndarray | None = None) -> None:
        self.n = n
        self.reason = np.full(n, "", dtype=object)
        self.detail = np.full(n, "", dtype=object)
        self.flags = np.full(n, "", dtype=object)
        self.records = records if records is not None else np.full(n, "", dtype=object)
        self.rows: dict[tuple[str, str, str], dict] = {}
        #: per report row, the rule that first hit it: ``Problem.site`` or ``(1, call number)``.
        #: Every batch of a streamed layer makes the same calls in the same order, so merging
        #: the batches' rows by site gives the order one ledger over the whole layer gives.
        self.sites: dict[tuple[str, str, str], tuple] = {}
        self.calls = 0

    @property
    def keep(self) -> np.ndarray:
        return self.reason == ""

    def apply(self, p: Problem, values: pd.Series | None = None) -> pd.Series | None:
        """Act on ``p``; returns ``values`` with the problem's records nulled for ``null``."""
        if p.action not in ACTIONS:
            raise ValueError(f"unknown action {p.action!r}")
        self.calls += 1
        m = np.asarray(p.mask, dtype=bool)
        k = int(m.sum())
        if k == 0:
            return values
        det = (np.full(k, p.detail, dtype=object) if isinstance(p.detail, str)
               else np.asarray(p.detail, dtype=object))
        self._report(p, m, det, p.site if p.site is not None else (1, self.calls))
        if p.action == "quarantine":
            cur = self.reason[m]
            rank_new = _RANK.get(p.reason, len(_RANK))
            wins = np.array([c == "" or _RANK.get(c, len(_RANK)) > rank_new for c in cur],
                            dtype=bool)
            idx = np.flatnonzero(m)
            self.reason[idx[wins]] = p.reason
            old = self.detail[idx]
            text = p.reason + ": " + det.astype(str)
            self.detail[idx] = np.where(old == "", text, old + "; " + text)
            return values
        if p.action in ("null", "warn"):
            flag = FLAG_NAMES.get(p.reason, p.reason.lower()) + (f":{p.field}" if p.field else "")
            self.flags[m] = self.flags[m] + flag + ";"
        if p.action == "null" and values is not None:
            return values.mask(pd.Series(m, index=values.index))
        return values

    def _report(self, p: Problem, m: np.ndarray, det: np.ndarray, site: tuple) -> None:
        key = (p.reason, p.field or "", p.action)
        row = self.rows.get(key)
        if row is None:
            self.sites[key] = site
            first = int(np.flatnonzero(m)[0])
            row = self.rows[key] = {"reason": p.reason, "field": p.field, "action": p.action,
                                    "count": 0, "example": f"{self.records[first]} {det[0]}"
                                    .strip()}
        row["count"] += int(m.sum())

    def report_rows(self) -> list[dict]:
        """The layer's problems, most frequent first (for the manifest and the QA report)."""
        return sorted(self.rows.values(), key=lambda r: (-r["count"], r["reason"]))

    def merge_rows(self, other: Ledger) -> None:
        """Add the report rows of a later batch of the same layer: counts add up; a row's
        example comes from the earliest rule (then the earliest batch) that hit it, and rows are
        kept in rule order, as one ledger over all the batches would have them."""
        for key, row in other.rows.items():
            site = other.sites[key]
            mine = self.rows.get(key)
            if mine is None:
                self.rows[key] = dict(row)
                self.sites[key] = site
            else:
                mine["count"] += row["count"]
                if site < self.sites[key]:
                    mine["example"], self.sites[key] = row["example"], site
        order = sorted(self.rows, key=lambda k: self.sites[k])
        self.rows = {k: self.rows[k] for k in order}

    def flag_series(self, index: pd.Index) -> pd.Series:
        return pd.Series(self.flags, index=index, dtype="string")
