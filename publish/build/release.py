"""Release directories and the atomic ``current`` switch.

Layout under ``public_dir``::

    releases/<id>/public.gpkg      the public store (allow-listed, CRS84)
    releases/<id>/pygeoapi.yml     pygeoapi config: absolute paths into this directory only
    releases/<id>/openapi.yml      generated from that config
    releases/<id>/locale/          Japanese catalogue for pygeoapi's HTML
    releases/<id>/site/            static pages (site/maps/<name>.html), built by site builders
    releases/<id>/release.json     written last: a release without it is incomplete
    current -> releases/<id>       relative symlink, replaced with one rename(2)
    .publish.lock                  one publisher at a time (flock)

Why this shape: a release is immutable once ``current`` points at it, and each release's config
names only its own files, so a server that picked release A for a request serves A's data, A's
config and A's OpenAPI document for the whole response, even while B is being switched in. The
switch is ``symlink(tmp) + rename(tmp, current)``, atomic on POSIX. A failed publish deletes its
directory and never touches ``current``. Old releases are pruned, keeping at least two so that a
request still running on the previous release finds its files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publish.errors import PublishError

RELEASES = "releases"
CURRENT = "current"
LOCK = ".publish.lock"
RELEASE_JSON = "release.json"
STORE = "public.gpkg"
CONFIG = "pygeoapi.yml"
OPENAPI = "openapi.yml"
SITE = "site"
LOCALE = "locale"
MIN_KEEP = 2


@dataclass(frozen=True)
class Release:
    """A complete, immutable release directory and its metadata (``release.json``)."""

    id: str
    dir: Path
    meta: dict[str, Any]

    @property
    def store(self) -> Path:
        return self.dir / STORE

    @property
    def config(self) -> Path:
        return self.dir / CONFIG

    @property
    def openapi(self) -> Path:
        return self.dir / OPENAPI

    @property
    def site(self) -> Path:
        return self.dir / SITE

    @property
    def locale(self) -> Path:
        return self.dir / LOCALE


def releases_dir(public_dir: Path) -> Path:
    return public_dir / RELEASES


def new_release_id(now: dt.datetime | None = None) -> str:
    """Sortable, unique per microsecond (publishes are serialised by the lock)."""
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def current_id(public_dir: Path) -> str | None:
    """Id of the current release: one ``readlink`` (cheap enough to do on every request)."""
    try:
        return Path(os.readlink(public_dir / CURRENT)).name
    except OSError:
        return None


def load_release(public_dir: Path, rid: str) -> Release | None:
    """The release ``rid`` if it is complete, else None."""
    d = releases_dir(public_dir) / rid
    try:
        meta = json.loads((d / RELEASE_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Release(rid, d, meta)


def current_release(public_dir: Path) -> Release | None:
    rid = current_id(public_dir)
    return load_release(public_dir, rid) if rid else None


def list_releases(public_dir: Path) -> list[str]:
    """Complete releases, oldest first."""
    rd = releases_dir(public_dir)
    if not rd.is_dir():
        return []
    return sorted(p.name for p in rd.iterdir() if (p / RELEASE_JSON).is_file())


def write_meta(release_dir: Path, meta: dict[str, Any]) -> None:
    """Write ``release.json`` last (atomically): it marks the release as complete."""
    tmp = release_dir / f".{RELEASE_JSON}.tmp"
    tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, release_dir / RELEASE_JSON)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def switch(public_dir: Path, rid: str) -> None:
    """Point ``current`` at ``releases/<rid>`` with one atomic rename."""
    if load_release(public_dir, rid) is None:
        raise ValueError(f"release {rid} is incomplete")
    tmp = public_dir / f".{CURRENT}.{rid}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(Path(RELEASES) / rid, tmp)  # relative: the public dir may be moved as a whole
    os.replace(tmp, public_dir / CURRENT)
    _fsync_dir(public_dir)


def prune(public_dir: Path, keep: int) -> list[str]:
    """Delete old and incomplete releases; keep the newest ``keep`` (>= 2) and ``current``.

    Only called under the publish lock, so an incomplete directory is a crashed publish.
    """
    keep = max(keep, MIN_KEEP)
    rd = releases_dir(public_dir)
    if not rd.is_dir():
        return []
    cur = current_id(public_dir)
    complete = list_releases(public_dir)
    keep_ids = set(complete[-keep:]) | ({cur} if cur else set())
    removed = []
    for p in sorted(rd.iterdir()):
        if p.name not in keep_ids:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    for stale in public_dir.glob(f".{CURRENT}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    return removed


@contextlib.contextmanager
def publish_lock(public_dir: Path) -> Iterator[None]:
    """One publisher at a time; a second one fails at once with a clear message."""
    public_dir.mkdir(parents=True, exist_ok=True)
    path = public_dir / LOCK
    fh = path.open("a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PublishError("publish_locked", lock=path) from None
        yield
    finally:
        fh.close()  # closing releases the lock
