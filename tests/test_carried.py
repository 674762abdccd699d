"""The state a streamed layer carries on disk (etl/carried.py): the ids seen so far and the
change hashes give exactly what the in-memory versions gave, and the hashes file written in
chunks is the file ``to_parquet`` of the whole frame writes."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from etl.carried import CarriedHashes, SeenIds
from etl.report import change_counts, frame_counts
from etl.stores import gpkg as gpkgmod
from etl.stores.base import StagedRun


def _dups(batches: list[list[str | None]], hash_fn) -> list[list[str]]:
    """Per batch, ``_duplicates_streamed``'s use of SeenIds: which records are duplicates
    and of which winner (``file:record``)."""
    seen = SeenIds()
    out = []
    start = 0
    for b in batches:
        ids = np.array([v for v in b if v is not None], dtype=object)
        rec = np.array([f"r{start + i}" for i, v in enumerate(b) if v is not None], dtype=object)
        src = np.array([(start + i) % 3 for i, v in enumerate(b) if v is not None])
        start += len(b)
        h = hash_fn(ids)
        before = seen.find(h, ids)
        first = ~pd.Series(ids, dtype=object).duplicated(keep="first").to_numpy()
        here = {ids[j]: j for j in np.flatnonzero(first & (before < 0))}
        got = []
        for j in np.flatnonzero(~first | (before >= 0)):
            if before[j] >= 0:
                w_src, w_rec = seen.winner(int(before[j]))
            else:
                w = here[ids[j]]
                w_src, w_rec = int(src[w]), rec[w]
            got.append(f"{rec[j]}={ids[j]} of {w_src}:{w_rec}")
        out.append(got)
        new = first & (before < 0)
        seen.add(h[new], ids[new], src[new], rec[new])
    seen.close()
    return out


def _full_hash(ids: np.ndarray) -> np.ndarray:
    return pd.util.hash_array(ids.astype(object)) if len(ids) else np.empty(0, np.uint64)


def _tiny_hash(ids: np.ndarray) -> np.ndarray:
    """Two values only: nearly every id collides with others."""
    return _full_hash(ids) & np.uint64(1)


def _expected(batches: list[list[str | None]]) -> list[list[str]]:
    """The whole layer's rule: the first record with an id wins."""
    win: dict[str, tuple[int, str]] = {}
    out = []
    start = 0
    for b in batches:
        got = []
        for i, v in enumerate(b):
            if v is None:
                continue
            r = f"r{start + i}"
            if v in win:
                got.append(f"{r}={v} of {win[v][0]}:{win[v][1]}")
            else:
                win[v] = ((start + i) % 3, r)
        start += len(b)
        out.append(got)
    return out


BATCHES = [["a", "b", "a", None, "c"], ["b", "d", "d", "a\x00", None], ["a", "a\x00", "é", "e"],
           [], ["é", "c", "x"]]


@pytest.mark.parametrize("hash_fn", [_full_hash, _tiny_hash], ids=["hash", "tiny_hash"])
def test_duplicates_across_batches_name_the_winner(hash_fn) -> None:
    got = _dups(BATCHES, hash_fn)
    assert got == _expected(BATCHES)
    assert got == [["r2=a of 0:r0"], ["r5=b of 1:r1", "r7=d of 0:r6"],
                   ["r10=a of 0:r0", "r11=a\x00 of 2:r8"], [],
                   ["r14=é of 0:r12", "r15=c of 1:r4"]]


def test_random_ids_equal_the_whole_layer_rule_even_when_every_hash_collides() -> None:
    rng = np.random.default_rng(7)
    batches = [[None if rng.random() < 0.05 else f"id{rng.integers(0, 300)}"
                for _ in range(rng.integers(0, 120))] for _ in range(12)]
    want = _expected(batches)
    assert _dups(batches, _full_hash) == want
    assert _dups(batches, lambda ids: np.zeros(len(ids), dtype=np.uint64)) == want
    assert sum(map(len, want)) == 400


def test_scratch_file_is_gone_from_its_folder_at_once(tmp_path: Path) -> None:
    seen = SeenIds(tmp_path)
    ids = np.array(["a", "b"], dtype=object)
    seen.add(_full_hash(ids), ids, np.array([0, 0]), np.array(["r0", "r1"], dtype=object))
    hs = CarriedHashes(tmp_path)
    hs.append(ids, _full_hash(ids))
    assert os.listdir(tmp_path) == []
    found = seen.find(_full_hash(ids[::-1]), ids[::-1])
    assert [seen.winner(int(p)) for p in found] == [(0, "r1"), (0, "r0")]
    assert list(seen.find(_full_hash(ids[:1]), np.array(["A"], dtype=object))) == [-1]
    seen.close()
    hs.close()


# ------------------------------------------------------------------------- change hashes


def _pandas_counts(cur: pd.DataFrame, old: pd.DataFrame) -> dict[str, int]:
    """The counts of the pandas path of ``change_counts`` (whole frames)."""
    return frame_counts(cur, old)


def _frame(rng: np.random.Generator, n: int, pool: int, na: float) -> pd.DataFrame:
    ids = np.array([pd.NA if rng.random() < na else f"k{rng.integers(0, pool)}"
                    for _ in range(n)], dtype=object)
    return pd.DataFrame({"id": ids,
                         "hash": rng.integers(0, 4, size=n).astype(np.uint64) << np.uint64(62)})


def _carried(df: pd.DataFrame, step: int) -> CarriedHashes:
    c = CarriedHashes()
    for i in range(0, len(df), step):
        c.append(df["id"].to_numpy()[i:i + step], df["hash"].to_numpy()[i:i + step])
    return c


@pytest.mark.parametrize("seed", range(6))
def test_counts_equal_the_pandas_merge_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cur = _frame(rng, int(rng.integers(0, 400)), 250, [0, 0.02, 0.3][seed % 3])
    old = _frame(rng, int(rng.integers(0, 400)), 250, [0.02, 0, 0.3][seed % 3])
    c = _carried(cur, int(rng.integers(1, 90)))
    old_chunks = [old.iloc[i:i + 37] for i in range(0, len(old), 37)]
    assert c.counts(old_chunks) == _pandas_counts(cur, old)
    back = c.frame()
    pd.testing.assert_frame_equal(back, cur.reset_index(drop=True))
    c.close()


def test_counts_with_known_answer() -> None:
    cur = pd.DataFrame({"id": np.array(["a", "b", "a", pd.NA, "c", pd.NA], dtype=object),
                        "hash": np.array([1, 2, 9, 3, 2**64 - 1, 8], dtype=np.uint64)})
    old = pd.DataFrame({"id": np.array(["a", None, "b", "d"], dtype=object),
                        "hash": np.array([1, 4, 2**63, 5], dtype=np.uint64)})
    c = _carried(cur, 4)
    assert c.counts([old.iloc[:3], old.iloc[3:]]) == {"added": 1, "changed": 2, "deleted": 1,
                                                      "unchanged": 1}
    assert _pandas_counts(cur, old) == {"added": 1, "changed": 2, "deleted": 1, "unchanged": 1}
    c.close()


class _Run(StagedRun):
    """A store that writes the hashes whole (the default ``write_hash_chunks``)."""

    def __init__(self) -> None:
        self.got: dict[str, pd.DataFrame] = {}

    def write_hashes(self, layer: str, hashes: pd.DataFrame) -> None:
        self.got[layer] = hashes


class _Store:
    def __init__(self, old: dict[str, pd.DataFrame]) -> None:
        self.old = old

    def read_hashes(self, run_id: str, layer: str) -> pd.DataFrame | None:
        return self.old.get(layer)

    def iter_hashes(self, run_id: str, layer: str, rows: int = 65_536):
        df = self.read_hashes(run_id, layer)
        return None if df is None else (df.iloc[i:i + 5] for i in range(0, len(df), 5))


@pytest.mark.parametrize("missing", [0.0, 1.0])
def test_change_counts_takes_frame_or_carried_hashes_alike(missing: float) -> None:
    rng = np.random.default_rng(3)
    cur = _frame(rng, 60, 40, missing)
    old = _frame(rng, 50, 40, 0.1)
    prev = {"run_id": "r1"}
    runs = [_Run(), _Run()]
    want = change_counts(_Store({"L": old}), prev, runs[0], "L", cur)  # type: ignore[arg-type]
    got = change_counts(_Store({"L": old}), prev, runs[1], "L",  # type: ignore[arg-type]
                        _carried(cur, 7))
    assert got == want and want["previous_run"] == "r1"
    pd.testing.assert_frame_equal(runs[1].got["L"], runs[0].got["L"])
    first = change_counts(_Store({}), prev, _Run(), "L", _carried(cur, 7))  # type: ignore[arg-type]
    assert first == {"added": 60, "changed": 0, "deleted": 0, "unchanged": 0,
                     "previous_run": "r1"}


@pytest.mark.parametrize(("rows", "group"), [(1, 1024 * 1024), (5000, 1024 * 1024),
                                             (5000, 700), (1400, 700), (300, 1)])
def test_hashes_file_written_in_chunks_is_the_to_parquet_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int, group: int) -> None:
    rng = np.random.default_rng(rows)
    df = _frame(rng, rows, 10**6, 0.05)
    df["hash"] = rng.integers(0, 2**63, size=rows).astype(np.uint64) * np.uint64(2)
    monkeypatch.setattr(gpkgmod, "HASH_ROW_GROUP", group)
    run = SimpleNamespace(artifacts=tmp_path)
    c = _carried(df, 333)
    gpkgmod.GpkgRun.write_hash_chunks(run, "L", c.chunks(rows=256))  # type: ignore[arg-type]
    c.close()
    whole = tmp_path / "whole.parquet"
    kw = {} if group == 1024 * 1024 else {"row_group_size": group}
    df.to_parquet(whole, index=False, **kw)
    # byte for byte while a column chunk fits one data page (1 MB); beyond, pages may split
    # elsewhere (the 10M parcel layer: the same frame, schema and row groups)
    assert (tmp_path / "hashes" / "L.parquet").read_bytes() == whole.read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "hashes" / "L.parquet"),
                                  pd.read_parquet(whole))
