"""A throwaway PostgreSQL 15 + PostGIS 3 cluster for tests and benchmarks.

Why: the PostGIS code paths need a real server, but tests must neither need nor touch a system
cluster. This starts a private one on a free loopback port in a temporary directory, with
durability switched off (the data is thrown away), and makes sure it is stopped and removed
afterwards (``import tests.pgserver`` does not work in this venv: pygeoapi installs a top-level
``tests`` package that shadows ours)::

    from pgserver import pg_server, postgis_available  # tests/ is on sys.path (conftest.py)

    if (why := postgis_available()) is not None:
        pytest.skip(why)
    with pg_server() as srv:
        srv.psql("SELECT postgis_full_version()")
        psycopg2.connect(srv.dsn())

Running as root: initdb and postgres refuse to run as root, so they run as the ``postgres`` OS
user. The uid/gid are dropped by ``subprocess`` in the child (what ``runuser -u postgres`` does,
minus PAM and a shell in between), so the postmaster is our direct child and its exit is seen at
once. That user must be able to reach the data directory; pytest's temp dirs
(``/tmp/pytest-of-root``, mode 0700) are not traversable by it, so when ``base_dir`` cannot be
reached the cluster goes into a fresh ``tempfile.mkdtemp()`` directory in the system temp dir
instead (removed afterwards just the same). We never chmod directories we did not create.

No postmaster is left behind: the context manager stops it in ``finally``; an ``atexit`` hook
covers a generator that was never closed; and a small ``sh`` watchdog in its own session waits on
a pipe from this process and, if this process dies without cleaning up (SIGKILL, SIGTERM,
``os._exit`` as used by pytest-timeout's thread method), stops the postmaster and removes the
directory.

``UOZU_PG_BINDIR`` overrides the server binaries directory (default /usr/lib/postgresql/15/bin).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["PgServer", "pg_server", "postgis_available"]

DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"
HOST = "127.0.0.1"
SUPERUSER = "postgres"  # database superuser created by initdb
OS_USER = "postgres"  # OS account the server runs as when we are root
START_TIMEOUT = 60.0  # seconds for the server to accept connections
TEMPLATE_DB = "template_postgis"  # cloned by create_database(): much faster than CREATE EXTENSION
_PORT_ATTEMPTS = 5  # the free port can be taken between probing and binding
_SUN_PATH_MAX = 107  # bytes usable in sockaddr_un.sun_path (108 incl. NUL)
_PORT_TAKEN = ("Address already in use", "could not create any TCP/IP sockets")


def _bindir() -> Path:
    return Path(os.environ.get("UOZU_PG_BINDIR") or DEFAULT_BINDIR)


@functools.lru_cache(maxsize=8)
def _pg_config(bindir: Path, what: str) -> Path | None:
    """Ask pg_config for a directory; None if it cannot tell (the Debian layout is the fallback)."""
    try:
        out = subprocess.run(
            [str(bindir / "pg_config"), f"--{what}"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def postgis_available() -> str | None:
    """None if a PostGIS test server can be started here, else why not (to skip tests with)."""
    bindir = _bindir()
    for name in ("initdb", "postgres", "pg_isready", "psql"):
        if not os.access(bindir / name, os.X_OK):
            return f"{bindir / name} not found: install postgresql-15 (or set UOZU_PG_BINDIR)"
    share = _pg_config(bindir, "sharedir") or Path("/usr/share/postgresql") / bindir.parent.name
    control = share / "extension" / "postgis.control"
    if not control.is_file():
        return f"{control} not found: install postgresql-15-postgis-3"
    pkglib = _pg_config(bindir, "pkglibdir") or bindir.parent / "lib"
    if not (pkglib / "postgis-3.so").is_file():
        return f"{pkglib / 'postgis-3.so'} not found: install postgresql-15-postgis-3"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root, but there is no {OS_USER!r} OS user to run the server as"
    return None


def _clean_env(**extra: str) -> dict[str, str]:
    """Our environment minus PG* variables, so a developer's PGHOST/PGDATA cannot leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


def _server_user() -> dict[str, Any]:
    """subprocess arguments that run a child as the server's OS user (empty unless root)."""
    if os.geteuid() != 0:
        return {"env": _clean_env()}
    pw = pwd.getpwnam(OS_USER)
    return {
        "user": pw.pw_uid,
        "group": pw.pw_gid,
        "extra_groups": os.getgrouplist(pw.pw_name, pw.pw_gid),
        "env": _clean_env(HOME=pw.pw_dir, USER=pw.pw_name, LOGNAME=pw.pw_name),
    }


def _dsn_value(value: str) -> str:
    """Quote a libpq keyword value when it needs it (empty, blanks, quotes, backslashes)."""
    if value and not any(ch in value for ch in " \t\r\n'\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class PgServer:
    """Where a running test cluster listens; connection helpers (auth is trust on loopback)."""

    host: str
    port: int
    superuser: str
    dbname: str
    datadir: Path

    @property
    def logfile(self) -> Path:
        """The server log, for debugging a failing test while the server still runs."""
        return self.datadir.parent / "server.log"

    def url(self, user: str | None = None, dbname: str | None = None) -> str:
        """SQLAlchemy/libpq URL without password, e.g. postgresql://postgres@127.0.0.1:5433/gis."""
        u = quote(user or self.superuser, safe="")
        d = quote(dbname or self.dbname, safe="")
        return f"postgresql://{u}@{self.host}:{self.port}/{d}"

    def dsn(self, user: str | None = None, dbname: str | None = None) -> str:
        """libpq keyword form (psycopg2.connect(dsn), ogr2ogr PG:"...")."""
        parts = {
            "host": self.host,
            "port": str(self.port),
            "dbname": dbname or self.dbname,
            "user": user or self.superuser,
        }
        return " ".join(f"{k}={_dsn_value(v)}" for k, v in parts.items())

    def psql(self, sql: str, user: str | None = None, dbname: str | None = None) -> str:
        """Run an SQL script with psql and return its raw stdout (unaligned, tuples only, quiet).

        Why psql rather than a driver: it needs nothing from the venv and runs scripts with
        several statements; ON_ERROR_STOP makes the first error fail the call with RuntimeError.
        """
        cmd = [
            str(_bindir() / "psql"), "-X", "-A", "-t", "-q", "-w",
            "-v", "ON_ERROR_STOP=1", "-d", self.dsn(user, dbname),
        ]
        r = subprocess.run(
            cmd, input=sql, capture_output=True, text=True, check=False, env=_clean_env()
        )
        if r.returncode != 0:
            where = self.dsn(user, dbname)
            raise RuntimeError(f"psql failed (exit {r.returncode}) on {where}:\n{r.stderr.strip()}")
        return r.stdout

    def create_database(self, name: str, postgis: bool = True) -> str:
        """Create a database (with the postgis extension unless postgis=False); return its URL.

        Clones template_postgis when the cluster has one (pg_server makes it): a file copy
        instead of re-running the postgis install script for every database.
        """
        create = f"CREATE DATABASE {_ident(name)}"
        if postgis:
            has_template = self.psql(
                f"SELECT 1 FROM pg_database WHERE datname = {_literal(TEMPLATE_DB)}",
                dbname="postgres",
            ).strip()
            if has_template:
                self.psql(f"{create} TEMPLATE {_ident(TEMPLATE_DB)}", dbname="postgres")
                return self.url(dbname=name)
        self.psql(create, dbname="postgres")
        if postgis:
            self.psql("CREATE EXTENSION IF NOT EXISTS postgis", dbname=name)
        return self.url(dbname=name)


# Stops the postmaster and removes the directory if the pipe from us closes without "done".
# The /proc/PID/cwd test makes sure the PID still is our postmaster (it chdirs to its data dir)
# and not a recycled PID or an unreaped zombie.
_WATCHDOG_SH = r"""
read -r msg
[ "$msg" = done ] && exit 0
root=$1; data=$2
ours() { [ "$(readlink "/proc/$1/cwd" 2>/dev/null)" = "$data" ]; }
pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null)
case $pid in ''|*[!0-9]*) pid= ;; esac
if [ -n "$pid" ] && ours "$pid"; then
    for sig in INT QUIT KILL; do
        kill -s "$sig" "$pid" 2>/dev/null
        i=0
        while ours "$pid" && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        ours "$pid" || break
    done
fi
rm -rf "$root"
"""


class _Cluster:
    """One private cluster directory and its postmaster (internal; PgServer is the public view)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.datadir = root / "data"
        self.sockdir = root / "sock"
        self.logfile = root / "server.log"
        self.owner_pid = os.getpid()  # a forked child must not stop its parent's server
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.closed = False

    # -- life cycle ---------------------------------------------------------------------------

    def start_watchdog(self) -> None:
        self.watchdog = subprocess.Popen(
            ["/bin/sh", "-c", _WATCHDOG_SH, "uozu-pg-watchdog", str(self.root), str(self.datadir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # survives Ctrl-C and kills of our process group
        )

    def initdb(self) -> None:
        base = [
            str(_bindir() / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER,
            "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions",
        ]
        errors = []
        for locale in ("C.UTF-8", "C"):  # C.UTF-8 is in glibc >= 2.35; C works everywhere
            r = subprocess.run(
                [*base, f"--locale={locale}"],
                capture_output=True, text=True, check=False, cwd=self.root, **_server_user(),
            )
            if r.returncode == 0:
                return
            errors.append(f"--locale={locale}: {r.stderr.strip() or r.stdout.strip()}")
            for child in self.datadir.iterdir():  # initdb cleans up, but be sure before retrying
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        raise RuntimeError("initdb failed:\n" + "\n".join(errors))

    def configure(self, shared_buffers: str, settings: Mapping[str, str] | None) -> None:
        conf = {
            "listen_addresses": HOST,
            "unix_socket_directories": str(self.sockdir),  # not /var/run/postgresql
            # throwaway data: no durability
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": shared_buffers,
            **(settings or {}),
        }
        lines = [f"{k} = {_literal(str(v))}\n" for k, v in conf.items()]
        with (self.datadir / "postgresql.conf").open("a", encoding="utf-8") as f:
            f.write("\n# uozu-gis throwaway test cluster (tests/pgserver.py)\n")
            f.writelines(lines)

    def start(self) -> None:
        """Start postgres on a free port; try another port if that one got taken meanwhile."""
        for _ in range(_PORT_ATTEMPTS):
            self.port = _free_port()
            offset = self.logfile.stat().st_size if self.logfile.exists() else 0
            with self.logfile.open("ab") as log:
                self.proc = subprocess.Popen(
                    [str(_bindir() / "postgres"), "-D", str(self.datadir), "-p", str(self.port)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.root,
                    start_new_session=True,  # Ctrl-C must not shut it down under the tests
                    **_server_user(),
                )
            if self._wait_ready():
                return
            log_text = self.log_tail(offset=offset)
            if not any(s in log_text for s in _PORT_TAKEN):
                raise RuntimeError(
                    f"postgres exited with status {self.proc.returncode} during start-up; "
                    f"server log:\n{log_text}"
                )
        raise RuntimeError(
            f"postgres could not bind a free port on {HOST} in {_PORT_ATTEMPTS} attempts; "
            f"server log:\n{self.log_tail()}"
        )

    def _wait_ready(self) -> bool:
        """True once accepting connections; False if postgres exited; raise after the timeout."""
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        delay = 0.01
        while self.proc.poll() is None:
            # The pid file check makes sure it is our postmaster answering on that port.
            if self._pidfile_status() == "ready" and _pg_isready(self.port):
                return True
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL did not accept connections on {HOST}:{self.port} within "
                    f"{START_TIMEOUT:.0f}s; server log tail:\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
        return False

    def _pidfile_status(self) -> str | None:
        """Line 8 of postmaster.pid ("starting"/"ready"/"stopping") if it is our postmaster's."""
        assert self.proc is not None
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            return None
        if len(lines) < 8 or lines[0].strip() != str(self.proc.pid):
            return None
        if lines[3].strip() != str(self.port):
            return None
        return lines[7].strip()

    def stop(self) -> None:
        """Stop the postmaster: the signals pg_ctl stop -m fast / -m immediate send, then KILL.

        We signal our own child directly instead of running pg_ctl: same effect, no uid switch,
        and proc.wait() returns the moment it is gone (pg_ctl polls every 100 ms).
        """
        proc = self.proc
        if proc is None:
            return
        for sig, grace in ((signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)

    def close(self) -> None:
        """Stop, remove the directory, dismiss the watchdog. Idempotent; owner process only."""
        if self.closed or os.getpid() != self.owner_pid:
            return
        self.closed = True
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            _LIVE.discard(self)
            if self.watchdog is not None:
                with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
                    assert self.watchdog.stdin is not None
                    self.watchdog.stdin.write(b"done\n")
                    self.watchdog.stdin.close()
                    self.watchdog.wait(timeout=5)

    def log_tail(self, lines: int = 40, offset: int = 0) -> str:
        try:
            with self.logfile.open("rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(no server log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


_LIVE: set[_Cluster] = set()


@atexit.register
def _close_all() -> None:
    """Safety net for clusters whose context manager was never exited."""
    for cluster in list(_LIVE):
        cluster.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _pg_isready(port: int) -> bool:
    r = subprocess.run(
        [str(_bindir() / "pg_isready"), "-q", "-h", HOST, "-p", str(port),
         "-U", SUPERUSER, "-d", "postgres", "-t", "5"],
        check=False, env=_clean_env(),
    )
    return r.returncode == 0


def _make_root(base_dir: Path | None) -> _Cluster:
    """Create the cluster directory under base_dir, or under the temp dir if the server's OS
    user could not reach it there (root running with pytest's 0700 dirs) or the socket path
    would be too long."""
    parents: list[Path | None] = [base_dir] if base_dir is not None else []
    parents += [None, Path("/tmp")]  # None: tempfile.gettempdir()
    problems = []
    seen = set()
    for parent in parents:
        key = str(Path(parent or tempfile.gettempdir()).resolve())
        if key in seen:
            continue
        seen.add(key)
        try:
            if parent is not None:
                parent.mkdir(parents=True, exist_ok=True)
            root = Path(tempfile.mkdtemp(prefix="uozu-pg-", dir=parent)).resolve()
        except OSError as exc:
            problems.append(f"{key}: {exc}")
            continue
        problem = _prepare_root(root)
        if problem is None:
            return _Cluster(root)
        problems.append(problem)
        shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError("no usable directory for the test cluster: " + "; ".join(problems))


def _prepare_root(root: Path) -> str | None:
    """Make data/ and sock/ owned by the server's OS user; None if it can use them."""
    sock = root / "sock"
    if len(os.fsencode(sock / ".s.PGSQL.65535")) > _SUN_PATH_MAX:
        return f"{root}: unix socket path would be too long"
    root.chmod(0o755)
    data = root / "data"
    data.mkdir(mode=0o700)
    sock.mkdir(mode=0o755)
    if os.geteuid() != 0:
        return None
    pw = pwd.getpwnam(OS_USER)
    for d in (data, sock):
        os.chown(d, pw.pw_uid, pw.pw_gid)
    # Ask the OS user itself: this honours every parent's mode, ACLs and mount options.
    r = subprocess.run(
        ["test", "-w", str(data), "-a", "-x", str(data), "-a", "-w", str(sock)],
        check=False, cwd="/", **_server_user(),
    )
    if r.returncode != 0:
        return f"{root}: not writable by the {OS_USER!r} OS user (a parent is not traversable)"
    return None


@contextlib.contextmanager
def pg_server(
    base_dir: Path | None = None,
    *,
    dbname: str = "gis",
    shared_buffers: str = "128MB",
    settings: Mapping[str, str] | None = None,
) -> Iterator[PgServer]:
    """Run a throwaway PostgreSQL + PostGIS cluster on 127.0.0.1 for the duration of the block.

    initdb (trust auth, UTF8, locale C.UTF-8 or C) into a new directory under base_dir (or
    tempfile.mkdtemp(); see the module docstring for root and pytest's 0700 dirs), start it on a
    free port with durability off, wait until it accepts connections (at most 60 s; the error
    shows the server log tail), create template_postgis and the database ``dbname`` with
    PostGIS, yield; finally stop the server (fast, then immediate) and remove the directory.
    ``settings`` adds or overrides postgresql.conf entries, e.g. {"jit": "off"}.
    """
    reason = postgis_available()
    if reason is not None:
        raise RuntimeError(f"cannot start a PostGIS test server: {reason}")
    cluster = _make_root(base_dir)
    _LIVE.add(cluster)
    try:
        cluster.start_watchdog()
        cluster.initdb()
        cluster.configure(shared_buffers, settings)
        cluster.start()
        srv = PgServer(HOST, cluster.port, SUPERUSER, dbname, cluster.datadir)
        srv.psql(f"CREATE DATABASE {_ident(TEMPLATE_DB)}", dbname="postgres")
        srv.psql("CREATE EXTENSION postgis", dbname=TEMPLATE_DB)
        srv.psql(
            f"ALTER DATABASE {_ident(TEMPLATE_DB)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
            dbname="postgres",
        )
        if dbname == "postgres":  # exists already
            srv.psql("CREATE EXTENSION IF NOT EXISTS postgis", dbname=dbname)
        else:
            srv.create_database(dbname)
        yield srv
    finally:
        cluster.close()
