"""The one policy engine (etl/policy.py): :meth:`Ledger.apply` with each action.

Whatever the action, the problem is one row of the layer's report (same keys, count and
example); the action decides only what happens to the record (quarantined with reason and
detail, value nulled and flagged, kept and flagged, kept unflagged). The corpus
(tests/test_bad_input.py) runs the same actions through a whole merge.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etl.policy import ACTIONS, Ledger, Problem

RECORDS = np.array(["a.shp #1 P0", "a.shp #2 P1", "a.shp #3 P2", "a.shp #4 P3"], dtype=object)
MASK = np.array([False, True, False, True])
DETAIL = np.array(["material=XX", "material=YY"], dtype=object)


def _apply(action: str) -> tuple[Ledger, pd.Series | None]:
    ledger = Ledger(4, records=RECORDS.copy())
    values = pd.Series(["HP", "XX", "VU", "YY"], dtype="string")
    out = ledger.apply(Problem(MASK, "UNKNOWN_CODE", action, DETAIL, "material"), values)
    return ledger, out


def _row(action: str) -> dict:
    return {"reason": "UNKNOWN_CODE", "field": "material", "action": action, "count": 2,
            "example": "a.shp #2 P1 material=XX"}


def test_quarantine() -> None:
    ledger, out = _apply("quarantine")
    assert list(ledger.reason) == ["", "UNKNOWN_CODE", "", "UNKNOWN_CODE"]
    assert list(ledger.detail) == ["", "UNKNOWN_CODE: material=XX", "", "UNKNOWN_CODE: material=YY"]
    assert list(ledger.keep) == [True, False, True, False]
    assert list(ledger.flags) == ["", "", "", ""]
    assert out is not None and list(out) == ["HP", "XX", "VU", "YY"]  # the record goes, as read
    assert ledger.report_rows() == [_row("quarantine")]


def test_null() -> None:
    ledger, out = _apply("null")
    assert list(ledger.reason) == ["", "", "", ""] and ledger.keep.all()
    assert list(ledger.flags) == ["", "unknown_code:material;", "", "unknown_code:material;"]
    assert out is not None and [None if pd.isna(v) else v for v in out] == ["HP", None, "VU", None]
    assert ledger.report_rows() == [_row("null")]


def test_warn() -> None:
    ledger, out = _apply("warn")
    assert ledger.keep.all()
    assert list(ledger.flags) == ["", "unknown_code:material;", "", "unknown_code:material;"]
    assert out is not None and list(out) == ["HP", "XX", "VU", "YY"]
    assert ledger.report_rows() == [_row("warn")]


def test_keep() -> None:
    ledger, out = _apply("keep")
    assert ledger.keep.all()
    assert list(ledger.flags) == ["", "", "", ""]  # unflagged, but never unreported
    assert out is not None and list(out) == ["HP", "XX", "VU", "YY"]
    assert ledger.report_rows() == [_row("keep")]


@pytest.mark.parametrize("action", ACTIONS)
def test_same_report_row_whatever_the_action(action: str) -> None:
    ledger, _ = _apply(action)
    (row,) = ledger.report_rows()
    assert {k: v for k, v in row.items() if k != "action"} == {
        k: v for k, v in _row("keep").items() if k != "action"}
    assert ledger.sites == {("UNKNOWN_CODE", "material", action): (1, 1)}


def test_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action 'drop'"):
        Ledger(1).apply(Problem(np.array([True]), "BAD_VALUE", "drop", "x", "f"))


def test_nothing_hit_leaves_no_row() -> None:
    ledger = Ledger(3)
    values = pd.Series([1, 2, 3])
    out = ledger.apply(Problem(np.zeros(3, dtype=bool), "BAD_VALUE", "null", "x", "f"), values)
    assert out is values and ledger.report_rows() == [] and ledger.calls == 1


def test_quarantine_reasons_rank_and_details_add_up() -> None:
    """Several reasons on one record: the first in REASON_ORDER names it, every detail stays."""
    ledger = Ledger(2, records=np.array(["#1", "#2"], dtype=object))
    ledger.apply(Problem(np.array([True, False]), "DUPLICATE_ID", "quarantine", "id=1", "id"))
    ledger.apply(Problem(np.array([True, True]), "BAD_VALUE", "quarantine", "w=x", "w"))
    assert list(ledger.reason) == ["BAD_VALUE", "BAD_VALUE"]
    assert list(ledger.detail) == ["DUPLICATE_ID: id=1; BAD_VALUE: w=x", "BAD_VALUE: w=x"]


def test_flags_accumulate_and_become_quality_flags() -> None:
    ledger = Ledger(2)
    ledger.apply(Problem(np.array([True, True]), "SENTINEL", "null", "d=999", "d"),
                 pd.Series([999.0, 999.0]))
    ledger.apply(Problem(np.array([True, False]), "OUT_OF_RANGE", "warn", "w=99", "w"))
    assert list(ledger.flag_series(pd.RangeIndex(2))) == ["sentinel:d;out_of_range:w;",
                                                          "sentinel:d;"]


def test_batches_merge_to_one_ledger() -> None:
    """A streamed layer's batches give the report one ledger over all records gives."""
    whole = Ledger(4, records=RECORDS.copy())
    whole.apply(Problem(MASK, "UNKNOWN_CODE", "warn", DETAIL, "material"))
    first, second = Ledger(2, records=RECORDS[:2].copy()), Ledger(2, records=RECORDS[2:].copy())
    first.apply(Problem(MASK[:2], "UNKNOWN_CODE", "warn", DETAIL[:1], "material"))
    second.apply(Problem(MASK[2:], "UNKNOWN_CODE", "warn", DETAIL[1:], "material"))
    first.merge_rows(second)
    assert first.report_rows() == whole.report_rows() == [_row("warn")]
