"""The pipe sheet never slows the maps: PDFs render in a bounded, low-priority pool.

Measured before: one sheet PDF (~0.6 s of CPU in the serving worker) made map requests ten
times slower (0.07 -> 0.70 s with 2 workers on 2 cores). Now:

* a sheet renders in a separate process (:class:`concurrent.futures.ProcessPoolExecutor`, one
  per serving worker, started lazily) at a lower CPU priority (``nice``), so a map request
  always gets the CPU first;
* at most :data:`SLOTS` sheets render at once over all workers of the server (one lock file per
  slot, ``flock``); past that, the answer is ``429 Too Many Requests`` with ``Retry-After`` and
  a bilingual "busy, retry in N s" (:class:`SheetGate`, a WSGI middleware), never a queue that
  would hold a map worker.

The child reports (ok, bytes) or (user error, message) or (failure, None): exceptions do not
cross the process boundary, and no server detail reaches an answer.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import math
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import IO, Any

from config import Project, load_project
from config.messages import text
from publish.pages.pipesheet import PipeSheetError, make_pipe_sheet

LOGGER = logging.getLogger(__name__)
SLOTS = max(1, (os.cpu_count() or 2) // 2)  # sheets rendering at once, server-wide
NICE = 10  # the render process yields the CPU to the map requests
RENDER_TIMEOUT_S = 120
DEFAULT_RETRY_S = 3

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


# ---------------------------------------------------------------------------------------------
# The child process


_CHILD_PROJECTS: dict[str, Project] = {}


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(NICE)


def _render(root: str, store: str, kw: dict[str, Any]) -> tuple[str, Any]:
    """In the child: the PDF bytes, or the user's error message, or a failure."""
    try:
        project = _CHILD_PROJECTS.get(root)
        if project is None:
            project = _CHILD_PROJECTS[root] = load_project(root)
        with tempfile.TemporaryDirectory(prefix="pipe-sheet-") as tmp:
            out = Path(tmp) / "sheet.pdf"
            make_pipe_sheet(project, Path(store), out=out, **kw)
            return "ok", out.read_bytes()
    except PipeSheetError as e:
        return "user", str(e)
    except Exception:  # logged in the child; the parent answers without details
        LOGGER.exception("pipe sheet failed (release store %s)", Path(store).parent.name)
        return "fail", None


# ---------------------------------------------------------------------------------------------
# Slots over the whole server (all workers)


def slot_dir(key: str) -> Path:
    """The lock files of one server (``key``: its public directory)."""
    h = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    d = Path(tempfile.gettempdir()) / f"gis-pdf-slots-{h}"
    d.mkdir(parents=True, exist_ok=True)
    return d


class Slots:
    """``n`` non-blocking slots shared by every process using the same folder (``flock``)."""

    def __init__(self, folder: Path, n: int = SLOTS) -> None:
        self.folder, self.n = Path(folder), n
        self.durations: deque[float] = deque(maxlen=20)
        self.stats_file = self.folder / "durations.json"

    def acquire(self) -> IO[str] | None:
        for i in range(self.n):
            fh = (self.folder / f"slot-{i}.lock").open("a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fh
            except BlockingIOError:
                fh.close()
        return None

    @staticmethod
    def release(fh: IO[str]) -> None:
        fh.close()  # closing releases the lock

    def record(self, seconds: float) -> None:
        self.durations.append(seconds)
        with contextlib.suppress(OSError):
            self.stats_file.write_text(json.dumps(list(self.durations)), encoding="utf-8")

    def retry_after(self) -> int:
        """About one render's time (median of the last ones, all workers), at least 1 s."""
        durations = list(self.durations)
        with contextlib.suppress(OSError, ValueError):
            durations = json.loads(self.stats_file.read_text(encoding="utf-8")) or durations
        if not durations:
            return DEFAULT_RETRY_S
        return max(1, math.ceil(statistics.median(durations)))


# ---------------------------------------------------------------------------------------------
# The pool (one per serving process)


class SheetPool:
    """Renders sheets in a low-priority child process; at most ``slots`` at once server-wide."""

    def __init__(self, key: str, *, slots: int = SLOTS) -> None:
        self.slots = Slots(slot_dir(key), slots)
        self._executor: ProcessPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():  # not across a fork
                ctx = multiprocessing.get_context("forkserver")
                self._executor = ProcessPoolExecutor(max_workers=1, mp_context=ctx,
                                                     initializer=_lower_priority)
                self._pid = os.getpid()
                atexit.register(self._executor.shutdown, wait=False, cancel_futures=True)
            return self._executor

    def render(self, project_root: str, store: Path, **kw: Any) -> tuple[str, Any]:
        """("ok", pdf bytes) | ("user", message) | ("fail", None); waits for the child."""
        t0 = time.perf_counter()
        fut = self.executor().submit(_render, str(project_root), str(store), kw)
        try:
            out = fut.result(timeout=RENDER_TIMEOUT_S)
        except Exception:
            LOGGER.exception("pipe sheet render process failed")
            with self._lock:  # a broken pool is replaced at the next request
                self._executor = None
            return "fail", None
        self.slots.record(time.perf_counter() - t0)
        return out


_POOLS: dict[str, SheetPool] = {}
_POOLS_LOCK = threading.Lock()


def key_of_store(store: Path) -> str:
    """The pool key of a release's store: its public directory (``<public>/releases/<id>/``)."""
    return str(Path(store).resolve().parent.parent.parent)


def pool_for(key: str) -> SheetPool:
    """The pool of the server publishing ``key`` (its public directory), one per process."""
    with _POOLS_LOCK:
        p = _POOLS.get(key)
        if p is None:
            p = _POOLS[key] = SheetPool(key)
        return p


# ---------------------------------------------------------------------------------------------
# The gate in front of the process execution


def busy_response(retry_after: int) -> tuple[str, list[tuple[str, str]], bytes]:
    """429 with Retry-After and the bilingual message (OGC exception JSON)."""
    body = json.dumps({"code": "ServerBusy", "type": "ServerBusy",
                       "description": text("sheet_busy", seconds=retry_after)},
                      ensure_ascii=False).encode("utf-8")
    headers = [("Content-Type", "application/json; charset=utf-8"),
               ("Retry-After", str(retry_after)), ("Content-Length", str(len(body))),
               ("Cache-Control", "no-store"), ("Access-Control-Allow-Origin", "*"),
               ("Access-Control-Expose-Headers", "Retry-After")]
    return "429 Too Many Requests", headers, body


class SheetGate:
    """WSGI middleware: a sheet request takes a slot or is answered 429 at once.

    ``is_sheet(method, path)`` tells which requests render sheets. The slot is held while the
    app renders (in ``pool``, at low priority); the app returns the finished PDF.
    """

    def __init__(self, app: WSGIApp, pool: SheetPool, is_sheet: Callable[[str, str], bool]) -> None:
        self.app, self.pool, self.is_sheet = app, pool, is_sheet

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.is_sheet(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        fh = self.pool.slots.acquire()
        if fh is None:
            status, headers, body = busy_response(self.pool.slots.retry_after())
            start_response(status, headers)
            return [body]
        try:  # the app renders the whole PDF before it returns: the slot is free after that
            return self.app(environ, start_response)
        finally:
            self.pool.slots.release(fh)
