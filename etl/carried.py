"""What a streamed layer carries from batch to batch, kept on disk instead of in memory.

A streamed layer is read, checked and written batch by batch, but two things span the whole
layer: the ids kept so far (a later record with the same id is a duplicate) and each feature's
change hash (compared with the previous run's once the layer is read). Held in memory they
cost ~80 bytes per feature (~180 MB for a 2.2M-feature layer) and grow with the layer; here
they live in a private scratch SQLite file (a small page cache, the rest on disk), so the
merge's resident size no longer grows with the size of its largest layer.

The scratch file is unlinked as soon as it is opened: it disappears with the connection (or
with the process, if a merge is killed), never lands in a run's folder, and needs no clean-up.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

#: SQLite page cache per scratch file (KiB): enough for the B-tree pages of one batch's
#: lookups; the rest of the file stays in the system's file cache, outside the merge's RSS
CACHE_KIB = 2 * 1024
#: rows per query result / per insert of the change hashes' comparison
CHUNK = 65_536


def scratch_db(where: Path | None = None) -> sqlite3.Connection:
    """A private SQLite database in a new file in ``where`` (default: the system's temporary
    folder), unlinked at once. No journal and no fsync: it is thrown away, never read back."""
    fd, path = tempfile.mkstemp(prefix=".carried-", suffix=".sqlite", dir=where)
    os.close(fd)
    try:
        con = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "locking_mode = EXCLUSIVE",
                       f"cache_size = -{CACHE_KIB}", "temp_store = FILE"):
            con.execute(f"PRAGMA {pragma}").fetchall()
        con.execute("CREATE TABLE _open (x)")  # the file is opened and locked before unlink
    finally:
        os.unlink(path)
    return con


def _signed(h: np.ndarray) -> list[int]:
    """uint64 hashes as SQLite's signed 64-bit integers (the same bits)."""
    return np.asarray(h, dtype=np.uint64).view(np.int64).tolist()


class SeenIds:
    """The ids kept so far in a streamed layer, with the source index and record label of the
    feature that kept each (the first feature with an id wins).

    An indexed table on the ids' 64-bit hashes; a hash hit counts only when the id text is
    equal too, so a hash collision never makes a duplicate. Each batch is looked up with one
    join against a probe table, not a query per record.
    """

    def __init__(self, where: Path | None = None) -> None:
        self.where = where
        self.n = 0
        self._con: sqlite3.Connection | None = None
        self._winners: dict[int, tuple[int, str]] = {}

    def _db(self) -> sqlite3.Connection:
        if self._con is None:
            con = scratch_db(self.where)
            con.execute("CREATE TABLE seen (h INTEGER NOT NULL, id NOT NULL, src INTEGER "
                        "NOT NULL, label NOT NULL)")
            con.execute("CREATE INDEX seen_h ON seen (h)")
            con.execute("CREATE TABLE probe (j INTEGER NOT NULL, h INTEGER NOT NULL, "
                        "id NOT NULL)")
            self._con = con
        return self._con

    def find(self, h: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Per id: the position of the same id seen before, or -1 (``winner`` names it)."""
        out = np.full(len(h), -1, dtype=np.int64)
        self._winners = {}
        if not self.n or not len(h):
            return out
        con = self._db()
        con.execute("BEGIN")
        try:
            con.execute("DELETE FROM probe")
            con.executemany("INSERT INTO probe VALUES (?, ?, ?)",
                            zip(range(len(h)), _signed(h), ids.tolist(), strict=True))
            rows = con.execute("SELECT p.j, s.rowid, s.src, s.label FROM probe p "
                               "CROSS JOIN seen s ON s.h = p.h AND s.id = p.id").fetchall()
        finally:
            con.execute("COMMIT")
        for j, pos, src, label in rows:
            out[j] = pos
            self._winners[pos] = (src, label)
        return out

    def winner(self, p: int) -> tuple[int, str]:
        """The source index and record label of the feature that kept the id at ``p``."""
        got = self._winners.get(p)
        if got is None:
            src, label = self._db().execute("SELECT src, label FROM seen WHERE rowid = ?",
                                            (p,)).fetchone()
            got = (int(src), label)
        return got

    def add(self, h: np.ndarray, ids: np.ndarray, src: np.ndarray, labels: np.ndarray) -> None:
        """Keep new ids (none of them seen before, each once), in hash order (local inserts)."""
        if not len(h):
            return
        order = np.argsort(np.asarray(h, dtype=np.uint64).view(np.int64), kind="stable")
        con = self._db()
        con.execute("BEGIN")
        try:
            con.executemany("INSERT INTO seen VALUES (?, ?, ?, ?)", zip(
                _signed(np.asarray(h)[order]), np.asarray(ids, dtype=object)[order].tolist(),
                np.asarray(src, dtype=np.int64)[order].tolist(),
                np.asarray(labels, dtype=object)[order].tolist(), strict=True))
        finally:
            con.execute("COMMIT")
        self.n += len(h)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class CarriedHashes:
    """The (id, change hash) of every feature of a streamed layer, in write order, on disk.

    ``chunks`` gives them back as the frames ``feature_hashes`` gives (object ids, ``pd.NA``
    for a missing one; uint64 hashes); ``counts`` compares them with the previous run's
    (read in chunks too) with exactly the counts of the pandas outer merge of the whole
    frames: the first row of an id counts, missing ids count as one id.
    """

    def __init__(self, where: Path | None = None) -> None:
        self.where = where
        self.n = 0
        self.named = 0  # rows with an id
        self._con: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._con is None:
            con = scratch_db(self.where)
            con.execute("CREATE TABLE cur (seq INTEGER PRIMARY KEY, id, hash INTEGER NOT NULL)")
            self._con = con
        return self._con

    def append(self, ids: np.ndarray, hashes: np.ndarray) -> None:
        """Add one batch: ``ids`` (object, None or NA for a missing id), uint64 ``hashes``."""
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=object)
        miss = pd.isna(ids)
        py = ids.tolist()
        for j in np.flatnonzero(miss):
            py[j] = None
        con = self._db()
        con.execute("BEGIN")
        try:
            con.executemany("INSERT INTO cur VALUES (?, ?, ?)", zip(
                range(self.n, self.n + len(py)), py, _signed(hashes), strict=True))
        finally:
            con.execute("COMMIT")
        self.n += len(py)
        self.named += int((~miss).sum())

    def chunks(self, rows: int = CHUNK) -> Iterator[pd.DataFrame]:
        """The rows in write order, ``rows`` at a time."""
        if not self.n:
            return
        cur = self._db().execute("SELECT id, hash FROM cur ORDER BY seq")
        while True:
            got = cur.fetchmany(rows)
            if not got:
                return
            yield _frame(got)

    def frame(self) -> pd.DataFrame:
        """Every row at once (for a store that writes the hashes in one piece)."""
        parts = list(self.chunks())
        if not parts:
            return pd.DataFrame({"id": np.empty(0, dtype=object),
                                 "hash": np.empty(0, dtype=np.uint64)})
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def counts(self, old: Iterable[pd.DataFrame]) -> dict[str, int]:
        """added / changed / deleted / unchanged against the previous run's (id, hash) rows."""
        con = self._db()
        con.execute("CREATE TABLE old (seq INTEGER PRIMARY KEY, id, hash INTEGER NOT NULL)")
        k = 0
        for part in old:
            ids = part["id"].to_numpy(dtype=object)
            py = ids.tolist()
            for j in np.flatnonzero(pd.isna(ids)):
                py[j] = None
            con.execute("BEGIN")
            con.executemany("INSERT INTO old VALUES (?, ?, ?)", zip(
                range(k, k + len(py)), py, _signed(part["hash"].to_numpy()), strict=True))
            con.execute("COMMIT")
            k += len(py)
        firsts = []
        for t in ("cur", "old"):  # the first row of each id (``drop_duplicates("id")``)
            con.execute(f"CREATE TABLE {t}_first (id PRIMARY KEY, hash INTEGER NOT NULL)")
            con.execute(f"INSERT INTO {t}_first SELECT id, hash FROM (SELECT id, hash, "
                        f"MIN(seq) FROM {t} WHERE id IS NOT NULL GROUP BY id)")
            n = con.execute(f"SELECT COUNT(*) FROM {t}_first").fetchone()[0]
            null = con.execute(f"SELECT hash FROM {t} WHERE id IS NULL ORDER BY seq LIMIT 1"
                               ).fetchone()
            firsts.append((n + (null is not None), null))
        both, changed = con.execute(
            "SELECT COUNT(*), COALESCE(SUM(c.hash != o.hash), 0) FROM cur_first c "
            "JOIN old_first o ON o.id = c.id").fetchone()
        (n_cur, null_cur), (n_old, null_old) = firsts
        if null_cur is not None and null_old is not None:  # pandas matches missing ids
            both += 1
            changed += int(null_cur[0] != null_old[0])
        for t in ("old", "cur_first", "old_first"):
            con.execute(f"DROP TABLE {t}")
        return {"added": n_cur - both, "changed": changed, "deleted": n_old - both,
                "unchanged": both - changed}

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """(id, signed hash) rows as ``feature_hashes`` gives them."""
    ids = np.empty(len(rows), dtype=object)
    ids[:] = [r[0] for r in rows]
    ids[pd.isna(ids)] = pd.NA
    hs = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)).view(np.uint64)
    return pd.DataFrame({"id": ids, "hash": hs})
