"""Precompressed copies of a release's large text files: ``<file>.br`` and ``<file>.gz``.

Why: a download of several MB (open-data GeoJSON, a map page's data) compressed in the request
path at brotli's best setting took longer than the server's worker timeout (7 MB: 69 s, worker
timeout 60 s). Compressing once at publish moves that cost out of every request: the server
(:mod:`publish.server.transfer`) and nginx (``gzip_static`` / ``brotli_static``,
docs/nginx/gis.conf) send the copy as it is, with ``Content-Encoding``.

Rules:

* only files the server sends as text (:data:`SUFFIXES`), of at least :data:`MIN_SIZE` bytes
  (below that the server compresses at its best setting in well under a second and keeps the
  result), in the folders the server answers from the files themselves (``site/``, ``opendata/``;
  ``changes/`` is rewritten per request, tiles are compressed already);
* a copy is kept only where it is smaller, and only after it decodes back to exactly the bytes of
  its file (same length and SHA-256): a copy carries nothing its file does not, so the release's
  leak checks (which read the files themselves) cover the copies too;
* files are compressed and checked as streams, :data:`CHUNK` bytes at a time: a release's
  open-data GeoJSON reaches 100 MB and more at a large city, and held whole (file, copy and the
  decoded check) one file alone put the publish's peak memory ~270 MB higher;
* a copy carries its file's modification time (``mtime``): the server uses a copy only while the
  two times are equal, so a file changed after publish is never answered with a stale copy;
* written like every release file, before the ``current`` switch (the release is atomic).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import brotli

from publish.errors import PublishError

#: encoding (HTTP ``Content-Encoding``) -> suffix of the copy, in order of preference
ENCODINGS = {"br": ".br", "gzip": ".gz"}
SUFFIXES = {".html", ".js", ".css", ".json", ".geojson", ".csv", ".txt", ".svg", ".xml"}
FOLDERS = ("site", "opendata")
MIN_SIZE = 256 * 1024  # also where the server stops using brotli's best setting per request
#: brotli quality by size: 11 runs at 0.15-0.4 MB/s, 10 at about 0.3-1 MB/s, 9 at 3-10 MB/s
#: (measured on GeoJSON on the 2-core reference machine); 11 is 30 % smaller than 9 on GeoJSON,
#: but a 7 MB file took 18-46 s at 11, which every publish would pay per file
BROTLI_QUALITY = ((512 * 1024, 11), (4 * 1024 * 1024, 10))
BROTLI_LARGE = 9
GZIP_LEVEL = 9
CHUNK = 1 << 20
#: zlib's window bits for a gzip stream (header and trailer)
_GZIP_WBITS = 31


def brotli_quality(size: int) -> int:
    return next((q for limit, q in BROTLI_QUALITY if size <= limit), BROTLI_LARGE)


def encode(body: bytes, encoding: str) -> bytes:
    """The copy's bytes: brotli (quality by size, :data:`BROTLI_QUALITY`) or gzip level 9."""
    if encoding == "br":
        return brotli.compress(body, quality=brotli_quality(len(body)), lgwin=22)
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def decode(blob: bytes, encoding: str) -> bytes:
    return brotli.decompress(blob) if encoding == "br" else gzip.decompress(blob)


def candidates(release_dir: Path) -> Iterator[Path]:
    """The files of a release that get copies (sorted; symlinks and hidden files skipped)."""
    for folder in FOLDERS:
        base = release_dir / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base)
            if (path.suffix.lower() in SUFFIXES and not path.is_symlink() and path.is_file()
                    and not any(p.startswith(".") for p in rel.parts)
                    and path.stat().st_size >= MIN_SIZE):
                yield path


def copy_path(path: Path | str, encoding: str) -> str:
    return f"{path}{ENCODINGS[encoding]}"


def fresh_copy(path: str, encoding: str) -> str | None:
    """The copy of ``path`` in ``encoding`` if there is one and it is current (a regular file,
    not a symlink, with the file's modification time), else None. For the server."""
    copy = copy_path(path, encoding)
    try:
        src, cp = os.stat(path), os.lstat(copy)
    except (OSError, ValueError):
        return None
    ok = stat.S_ISREG(cp.st_mode) and cp.st_mtime_ns == src.st_mtime_ns
    return copy if ok else None


def _encoder(encoding: str, size: int) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    """A streaming encoder (feed, finish) at the settings of :func:`encode`."""
    if encoding == "br":
        c = brotli.Compressor(quality=brotli_quality(size), lgwin=22)
        return c.process, c.finish
    z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    return z.compress, z.flush


def _decoder(encoding: str) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    if encoding == "br":
        d = brotli.Decompressor()
        return d.process, lambda: b"" if d.is_finished() else _truncated()
    z = zlib.decompressobj(_GZIP_WBITS)

    def finish() -> bytes:
        if not z.eof:
            _truncated()
        return z.flush()
    return z.decompress, finish


def _truncated() -> bytes:
    raise ValueError("compressed stream ends early")


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            yield block


def _digest(blocks: Iterator[bytes]) -> tuple[int, str]:
    """Length and SHA-256 of a stream of blocks."""
    h, n = hashlib.sha256(), 0
    for b in blocks:
        h.update(b)
        n += len(b)
    return n, h.hexdigest()


def _decoded(copy: Path, encoding: str) -> Iterator[bytes]:
    feed, finish = _decoder(encoding)
    for block in _chunks(copy):
        yield feed(block)
    yield finish()


def _same(copy: Path, encoding: str, want: tuple[int, str]) -> bool:
    """The copy decodes to the stream of length and SHA-256 ``want`` (a broken or truncated
    copy is not the same)."""
    try:
        return _digest(_decoded(copy, encoding)) == want
    except (ValueError, OSError, zlib.error, brotli.error):
        return False


def _encode_file(path: Path, encoding: str, size: int, out: Path) -> int:
    """Write ``path`` encoded to ``out``, block by block; the copy's size."""
    feed, finish = _encoder(encoding, size)
    n = 0
    with open(out, "wb") as fh:
        for block in _chunks(path):
            n += fh.write(feed(block))
        n += fh.write(finish())
    return n


def write_copies(release_dir: Path) -> list[Path]:
    """Write ``.br`` and ``.gz`` next to every candidate file of ``release_dir``; the copies.

    Each copy is written to a temporary name (streamed), checked to decode to exactly its
    file's bytes, stamped with its file's ``mtime`` and renamed into place.
    """
    written: list[Path] = []
    for path in candidates(release_dir):
        st = path.stat()
        want = _digest(_chunks(path))
        for enc in ENCODINGS:
            out = Path(copy_path(path, enc))
            tmp = out.with_name(f".{out.name}.tmp")
            try:
                if _encode_file(path, enc, st.st_size, tmp) >= st.st_size:
                    continue
                if not _same(tmp, enc, want):  # never: the libraries round-trip; checked
                    raise PublishError("precompress_mismatch", path=path.name)
                os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
                tmp.replace(out)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(out)
    return written


def check_copies(release_dir: Path) -> int:
    """Every ``.br``/``.gz`` of the release folders decodes to exactly its file's bytes and is
    current; raises otherwise. The number of copies checked (for leak scans and tests)."""
    n = 0
    for folder in FOLDERS:
        base = release_dir / folder
        if not base.is_dir():
            continue
        for enc, suffix in ENCODINGS.items():
            for copy in sorted(base.rglob(f"*{suffix}")):
                src = copy.with_name(copy.name[: -len(suffix)])
                if (not src.is_file() or fresh_copy(str(src), enc) != str(copy)
                        or not _same(copy, enc, _digest(_chunks(src)))):
                    raise PublishError("precompress_mismatch", path=copy.name)
                n += 1
    return n
