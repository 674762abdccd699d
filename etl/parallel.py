"""Child processes for layers merged in parallel: start one, talk to it, end it.

A child is forked: it inherits the run (the project, the layers it reads, the staged store)
as it is at the fork, so nothing is pickled into it; it sends back messages over a pipe
(progress ticks, then one result). Exceptions cross the pipe as their class and state
(:func:`pack_error`), so a layer's error reads the same as in a sequential run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing as mp
import os
import pickle
import signal
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

_LIBC_NAME = ctypes.util.find_library("c")
_LIBC = ctypes.CDLL(_LIBC_NAME, use_errno=True) if _LIBC_NAME else None
#: linux/prctl.h: the signal a process gets when its parent ends
_PR_SET_PDEATHSIG = 1


def jobs_default() -> int:
    """Processes of a merge: ``UOZU_GIS_JOBS``, else 2 (or 1 on a one-core machine)."""
    v = os.environ.get("UOZU_GIS_JOBS", "").strip()
    if v:
        return max(1, int(v))
    return max(1, min(2, os.cpu_count() or 1))


def pack_error(e: BaseException) -> tuple[Any, ...]:
    """An exception for the pipe. One that pickles faithfully (same class and text after a
    round trip: ``OSError`` keeps its errno and file name this way) goes as it is; otherwise
    as (class, state, args), rebuilt without calling ``__init__`` (an ``EtlError`` takes a
    message key and keyword parameters, not its text)."""
    try:
        blob = pickle.dumps(e)
        back = pickle.loads(blob)
        if type(back) is type(e) and str(back) == str(e):
            return ("pickled", blob)
    except Exception:  # not picklable as it is: by its state below
        pass
    state = dict(getattr(e, "__dict__", {}))
    try:
        pickle.dumps((type(e), state, e.args))
    except Exception:  # state that does not pickle: keep the text
        return "state", RuntimeError, {}, (f"{type(e).__name__}: {e}",)
    return "state", type(e), state, e.args


def unpack_error(packed: tuple[Any, ...]) -> BaseException:
    if packed[0] == "pickled":
        e: BaseException = pickle.loads(packed[1])
        return e
    _, cls, state, args = packed
    e = cls.__new__(cls)
    BaseException.__init__(e, *args)
    e.__dict__.update(state)
    return e


class Child:
    """One forked process running ``fn(send)``; ``send`` puts a message on the pipe."""

    def __init__(self, name: str, fn: Callable[[Callable[[Any], None]], None]) -> None:
        self.name = name
        ctx = mp.get_context("fork")
        self.conn, child_end = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_main, args=(fn, child_end, os.getpid()),
                                name=f"merge-{name}", daemon=True)
        self.proc.start()
        child_end.close()
        self.done = False

    def messages(self) -> list[Any]:
        """Every message waiting; ``("died", exitcode)`` once the child is gone without a
        result (killed, out of memory)."""
        out = []
        while not self.done and self.conn.poll():
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                self.proc.join()
                self.done = True
                out.append(("died", self.proc.exitcode))
                break
            out.append(msg)
            if msg[0] in ("result", "crash"):
                self.done = True
                self.proc.join()
        return out

    def stop(self) -> None:
        """End the child (a run given up); its pipe is closed."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.conn.close()


def ready(children: list[Child]) -> list[Child]:
    """The children with a message (or an end) waiting; blocks until there is one."""
    waiting = wait([c.conn for c in children])
    return [c for c in children if c.conn in waiting]


def _die_with(parent: int) -> None:
    """End this child when the merge that started it ends (killed, say): a child left
    running would hold the staged files and the caller's pipes open."""
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # gone already, before the line above
        os._exit(1)


def _main(fn: Callable[[Callable[[Any], None]], None], conn: Connection, parent: int) -> None:
    _die_with(parent)
    try:
        fn(conn.send)
    except BaseException as e:  # every failure goes back to the parent
        try:
            conn.send(("crash", pack_error(e), traceback.format_exc()))
        except Exception:
            conn.send(("crash", pack_error(RuntimeError(repr(e))), traceback.format_exc()))
    finally:
        conn.close()
