"""``uozu-gis``: a thin click CLI over the typed Python API in ``etl/`` and ``publish/``.

Logs and progress go to stderr, results to stdout (``--json`` for machines). Exit codes: 0 ok,
1 data/config error, 2 usage error (click's own).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from config import load_project
from config.console import quiet_warnings
from config.errors import EtlError
from config.messages import MESSAGES, text
from staff import cli as staff_cli

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Ctx:
    def __init__(self, project_dir: str | None, quiet: bool, as_json: bool, debug: bool,
                 store: str | None = None) -> None:
        self.project_dir = project_dir
        self.store = store
        self.quiet = quiet
        self.json = as_json
        self.debug = debug
        self._project = None

    @property
    def project(self):
        if self._project is None:
            # imported here, not at the top: `--help` and usage errors need no pandas (start-up)
            from etl.checks import check_project

            self._project = load_project(self.project_dir)
            check_project(self._project)
        return self._project

    def open_store(self):
        """The master store in effect: --store > UOZU_GIS_STORE > config (etl.stores.url)."""
        from etl.stores import open_store

        return open_store(self.project, self.store)

    def out(self, data: Any, human: str) -> None:
        """Result to stdout: JSON for machines or the human line."""
        if self.json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        else:
            click.echo(human)

    def log(self, msg: str) -> None:
        if not self.quiet:
            click.echo(msg, err=True)


class ProgressBars:
    """Rich progress bars on stderr: one for the layers, one for the current step.

    Silent with ``-q``; with a non-terminal stderr rich prints plain lines instead of bars.
    """

    def __init__(self, ctx: Ctx) -> None:
        self.enabled = not ctx.quiet
        self.progress = None
        self.overall = None

    def __enter__(self) -> Callable[[str, str, int, int], None] | None:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(TextColumn("{task.description:<34}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True))
        self.progress.start()
        return self.update

    def update(self, stage: str, layer: str, done: int, total: int) -> None:
        p = self.progress
        assert p is not None
        if stage == "plan":
            self.overall = p.add_task("レイヤ / layers", total=total)
            return
        key = f"stage_{stage}"
        label = f"{text(key) if key in MESSAGES else stage}: {layer}"
        if stage == "validate" and self.overall is not None and done == total:
            p.advance(self.overall)
        if stage in ("read", "write") and total > 1:
            tid = getattr(self, f"_{stage}", None)
            if tid is None or done == 1:
                tid = p.add_task(label, total=total)
                setattr(self, f"_{stage}", tid)
            p.update(tid, completed=done, description=label)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def run_guarded(fn: Callable[[], None], ctx: Ctx) -> None:
    """Map domain errors to ``Error: …`` + exit 1; keep tracebacks behind --debug.

    Environment faults (disk full, permission denied, a read-only folder, a locked file, a
    database that went away) are errors of the same kind: they name the path or server and the
    fix, in Japanese and English, never "internal error" nor a dump of SQL.
    """
    try:
        fn()
    except EtlError as e:
        _fail(e, ctx)
    except (KeyboardInterrupt, click.exceptions.Exit, click.ClickException):
        raise
    except Exception as e:
        env = _explain(e, ctx)
        if env is not None:
            for note in getattr(e, "__notes__", ()):
                env.add_note(note)
            _fail(env, ctx)
        if ctx.debug:
            traceback.print_exc()
        raise click.ClickException(
            f"内部エラー / internal error: {type(e).__name__}: {str(e)[:300]} "
            "(--debug で詳細 / rerun with --debug for the traceback)") from None


def _explain(e: Exception, ctx: Ctx) -> EtlError | None:
    """An environment fault the commands did not map themselves, as a clear error.

    A database error goes to the master store's ``explain`` (the server that went away or is
    full, named without its password, no SQL); anything else to the file-system explanation
    (disk full, read-only, permissions, a lock). None: a real bug.
    """
    from etl.stores import explain_error

    if type(e).__module__.split(".")[0] in ("sqlalchemy", "psycopg2"):
        try:
            env = ctx.open_store().explain(e)
        except Exception:  # the config itself is what failed: fall through
            env = None
        if env is not None:
            return env
    return explain_error(e)


def _fail(e: EtlError, ctx: Ctx) -> None:
    """``Error: <message>``, then the notes (e.g. "the current release is unchanged")."""
    if ctx.debug:
        traceback.print_exc()
    notes = [n for n in getattr(e, "__notes__", ()) if n not in str(e)]
    if ctx.json:
        errs = getattr(e, "errors", [e])
        click.echo(json.dumps({"ok": False, "errors": [str(x) for x in errs], "notes": notes},
                              ensure_ascii=False), err=False)
    raise click.ClickException("\n".join([str(e), *notes])) from None


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option("--project", "project_dir", type=click.Path(file_okay=False),
              help="プロジェクトのフォルダ (既定: 環境変数 UOZU_GIS_PROJECT、次に現在のフォルダ) / "
                   "project folder with config/project.yml (default: $UOZU_GIS_PROJECT, then the "
                   "current folder).")
@click.option("-q", "--quiet", is_flag=True, help="進捗を表示しない / no progress output.")
@click.option("--json", "as_json", is_flag=True, help="結果をJSONで出力 / print results as JSON.")
@click.option("--debug", is_flag=True, help="エラー時にトレースバック / show tracebacks.")
@click.option("--store", default=None, metavar="URL",
              help="保存先: gpkg または postgresql://user@host:port/db (パスワードは PGPASSWORD/"
                   "~/.pgpass)。既定は環境変数 UOZU_GIS_STORE、次に config / store: gpkg or a "
                   "postgresql:// URL without password (default: $UOZU_GIS_STORE, then config).")
@click.version_option("0.1.0", prog_name="uozu-gis")
@click.pass_context
def cli(cctx: click.Context, project_dir: str | None, quiet: bool, as_json: bool,
        debug: bool, store: str | None) -> None:
    """統合型・公開型GIS / Integrated and public GIS for a city (its project folder).

    \b
    Example:
        uozu-gis sample && uozu-gis merge && uozu-gis publish && uozu-gis serve
        uozu-gis --store postgresql://gis@127.0.0.1:5432/gis merge
    """
    cctx.obj = Ctx(project_dir, quiet, as_json, debug, store)


@cli.command()
@click.option("--scale", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
              help="市の規模に対する倍率 / size relative to the real city.")
@click.option("--seed", type=int, default=42, show_default=True, help="乱数の種 / random seed.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="出力先 (既定: data/raw) / output folder (default: the raw folder).")
@click.pass_obj
def sample(ctx: Ctx, scale: float, seed: int, out: str | None) -> None:
    """サンプル元データを作成 / Write the project's deterministic sample exports.

    The generator is the city's own file (``sample.generator`` in config/project.yml).

    \b
    Example:
        uozu-gis sample --scale 10 --seed 1
    """
    def go() -> None:
        generate = ctx.project.sample_generator()
        dst = Path(out) if out else ctx.project.raw_dir
        counts = generate(dst, scale=scale, seed=seed)
        ctx.out({"out": str(dst), "files": counts}, text("sample_done", dir=dst))
    run_guarded(go, ctx)


@cli.command()
@click.argument("layers", nargs=-1)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help=text("opt_jobs"))
@click.pass_obj
def validate(ctx: Ctx, layers: tuple[str, ...], jobs: int | None) -> None:
    """定義と入力を検査 (書込なし) / Dry run of merge: every record, nothing written.

    Reads and normalizes every record through the same steps as merge and prints what merge
    would write: per layer read / merged / quarantined, the top quarantine reasons with an
    example record each, the datum-grid coverage per source and the warnings. Fails (exit 1)
    where merge would fail, e.g. a layer over its quarantine budget.

    \b
    Example:
        uozu-gis validate
        uozu-gis validate sewer_pipe
    """
    def go() -> None:
        from etl.pipeline import RunErrors, run_merge
        from etl.report import summary_text
        try:
            with ProgressBars(ctx) as progress:
                res = run_merge(ctx.project, only=list(layers) or None, dry_run=True,
                                progress=progress, jobs=jobs)
        except RunErrors as e:
            if e.manifest and e.manifest.get("layers") and not ctx.json:
                click.echo(summary_text(e.manifest, project=ctx.project))
            raise
        m = res.manifest
        human = summary_text(m, project=ctx.project) + "\n" + text(
            "validate_ok", layers=len(m["layers"]), read=m["totals"]["read"])
        ctx.out({"ok": True, **m}, human)
    run_guarded(go, ctx)


@cli.command()
@click.argument("layers", nargs=-1)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help=text("opt_jobs"))
@click.pass_obj
def merge(ctx: Ctx, layers: tuple[str, ...], jobs: int | None) -> None:
    """元データを統合してマスタを作成 / Merge the sources into the master (GeoPackage or PostGIS).

    With LAYER names only those layers (and what they depend on) are rebuilt; the rest of the
    master is carried over from the current run.

    \b
    Example:
        uozu-gis merge
        uozu-gis merge sewer_pipe sewer_manhole
    """
    def go() -> None:
        from etl.pipeline import run_merge
        from etl.report import summary_text
        store = ctx.open_store()
        with ProgressBars(ctx) as progress:
            res = run_merge(ctx.project, only=list(layers) or None, progress=progress,
                            argv=sys.argv[1:], store=store, jobs=jobs)
        if store.kind == "postgresql" and ctx.project.config.departments:
            # department views name the run they were built on: move them to the new run now
            from staff.grants import apply_grants

            g = apply_grants(ctx.project, ctx.store)
            ctx.log(text("staff_grants_done", roles=", ".join(r["role"] for r in g.roles.values()),
                         run=g.run_id, views=sum(len(r["views"]) for r in g.roles.values()),
                         seconds=g.seconds))
        m = res.manifest
        t = m["totals"]
        ctx.log(text("report_written", path=res.run_dir / "report.html"))
        human = summary_text(m, project=ctx.project) + "\n" + text(
            "merge_done", run=m["run_id"], layers=len(m["layers"]), merged=t["merged"],
            quarantined=t["quarantined"], seconds=m["seconds"])
        ctx.out(m, human)
    run_guarded(go, ctx)


@cli.command("layers")
@click.pass_obj
def layers_cmd(ctx: Ctx) -> None:
    """レイヤ一覧 / List layers: visibility, features, CRS, last run.

    \b
    Example:
        uozu-gis layers --json
    """
    def go() -> None:
        p = ctx.project
        store = ctx.open_store()
        man = store.manifest() or {}
        rows = []
        for lid, spec in p.specs.items():
            info = man.get("layers", {}).get(lid, {})
            rows.append({"layer": lid, "title_ja": spec.title.ja, "title_en": spec.title.en,
                         "visibility": spec.visibility, "geometry": spec.geometry_type,
                         "features": info.get("features"), "crs": p.config.target_crs,
                         "data_date": info.get("data_date"), "last_run": man.get("run_id")})
        human = "\n".join(
            f"{r['layer']:<16}{r['visibility']:<10}{r['geometry']:<14}"
            f"{r['features'] if r['features'] is not None else '-':>8}  {r['crs']}  "
            f"{r['last_run'] or '-'}  {r['title_ja']} / {r['title_en']}" for r in rows)
        ctx.out(rows, human)
    run_guarded(go, ctx)


@cli.command()
@click.pass_obj
def runs(ctx: Ctx) -> None:
    """過去の実行一覧 / List stored merge runs (newest first; * = current).

    \b
    Example:
        uozu-gis runs
    """
    def go() -> None:
        store = ctx.open_store()
        cur = store.current_run()
        rows = [{"run_id": m["run_id"], "current": m["run_id"] == cur,
                 "finished_at": m.get("finished_at"), "partial": m.get("partial"),
                 **m.get("totals", {})} for m in store.list_runs()]
        human = "\n".join(f"{'*' if r['current'] else ' '} {r['run_id']}  {r['finished_at']}  "
                          f"merged {r.get('merged')}  quarantined {r.get('quarantined')}"
                          for r in rows) or "-"
        ctx.out(rows, human)
    run_guarded(go, ctx)


@cli.command()
@click.argument("run_id", required=False)
@click.pass_obj
def rollback(ctx: Ctx, run_id: str | None) -> None:
    """マスタを以前の実行に戻す / Point the master back to a stored run (default: previous).

    \b
    Example:
        uozu-gis rollback
        uozu-gis rollback 20261124T101500-ab12cd
    """
    def go() -> None:
        store = ctx.open_store()
        rid = store.rollback(run_id)
        ctx.out({"run_id": rid}, text("rollback_done", run=rid))
    run_guarded(go, ctx)


@cli.command()
@click.pass_obj
def publish(ctx: Ctx) -> None:
    """公開用データとAPI設定を作成 / Write the public store, API config and map pages.

    Only public layers, rows and fields leave the master (an allow-list from the specs); the
    running server switches to the new release atomically, without a restart.

    \b
    Example:
        uozu-gis publish
    """
    def go() -> None:
        from publish.build import publish as do_publish
        with ProgressBars(ctx) as progress:
            res = do_publish(ctx.project, progress=progress, store_url=ctx.store)
        for warning in res.warnings:  # (even with -q: something is left to tidy)
            click.echo(f"Warning: {warning}", err=True)
        ctx.out({"release": res.release_id, "path": str(res.path), "layers": res.counts,
                 "features": res.features, "timings": res.timings}, res.message())
    run_guarded(go, ctx)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="待受アドレス / bind address.")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True,
              help="ポート / port.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="ワーカ数 / gunicorn worker processes.")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="ワーカ毎のスレッド / threads per worker (gthread when > 1).")
@click.option("--base-url", default=None,
              help="リンクの公開URL (既定: publish.base_url、未設定ならアクセスされたURL) / "
                   "public URL for links (default: publish.base_url; unset: the URL each "
                   "client used).")
@click.pass_obj
def serve(ctx: Ctx, host: str, port: int, workers: int, threads: int,
          base_url: str | None) -> None:
    """公開サーバを起動 / Serve the OGC API, map pages, landing and terms pages on one port.

    Links in pages and API answers follow the URL each client used (Host, and X-Forwarded-* from
    publish.trusted_proxies), unless publish.base_url or --base-url is set.

    \b
    Example:
        uozu-gis serve --port 5000
        (then open http://127.0.0.1:5000/ in a browser, or add
         http://127.0.0.1:5000/api as an OGC API - Features connection in QGIS)
    """
    def go() -> None:
        from publish.server.app import serve as do_serve
        do_serve(ctx.project, host=host, port=port, workers=workers, threads=threads,
                 base_url=base_url)
    run_guarded(go, ctx)


@cli.command("pipe-sheet")
@click.option("--oaza", required=True, help="大字名 / district (大字), e.g. 本町.")
@click.option("--chiban", required=True, help="地番 / lot number, e.g. 123-4, １２３－４, 123番4.")
@click.option("--scale", type=click.Choice(["250", "500", "1000", "2500"]), default="500",
              show_default=True, help="縮尺 1/N / scale 1:N.")
@click.option("--paper", type=click.Choice(["A4", "A3", "A4-landscape", "A3-landscape"],
                                           case_sensitive=False), default="A4",
              show_default=True, help="用紙 / paper size.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="PDFの出力先 / output PDF.")
@click.option("--base-url", default=None,
              help="QRコードの公開URL (既定: publish.base_url) / public URL for the QR code "
                   "(default: publish.base_url).")
@click.pass_obj
def pipe_sheet(ctx: Ctx, oaza: str, chiban: str, scale: str, paper: str, output: str,
               base_url: str | None) -> None:
    """配管図 (参考図) のPDFを作成 / Print a pipe sheet PDF for a parcel (public data only).

    Needs a published layer with map role ``parcel`` and one with role ``pipe``.

    \b
    Example:
        uozu-gis pipe-sheet --oaza 本町 --chiban 123-4 --scale 500 --paper A4 -o sheet.pdf
    """
    def go() -> None:
        from publish.build.apiconfig import has_pipe_sheet, sheet_page
        from publish.build.release import current_release
        from publish.errors import PublishError
        from publish.pages.pipesheet import make_pipe_sheet
        p = ctx.project
        if not has_pipe_sheet(p):
            raise PublishError("sheet_no_roles")
        r = current_release(p.public_dir)
        if r is None:
            raise PublishError("no_release", dir=p.public_dir)
        root = (base_url or p.config.publish.base_url or "").rstrip("/")
        url = f"{root}/maps/{sheet_page(p) or ''}"
        out = make_pipe_sheet(p, r.store, oaza=oaza, chiban=chiban, scale=int(scale),
                              paper=paper, out=Path(output), map_url=url)
        ctx.out({"pdf": str(out), "release": r.id}, str(out))
    run_guarded(go, ctx)


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="書き出すファイル (既定: 標準出力) / write to this file (default: stdout).")
@click.pass_obj
def schema(ctx: Ctx, output: str | None) -> None:
    """統合スキーマを Markdown で出力 / Print the unified schema generated from the specs.

    \b
    Example:
        uozu-gis schema -o docs/schema.md
    """
    def go() -> None:
        from etl.docs import schema_markdown
        md = schema_markdown(ctx.project)
        if output:
            Path(output).write_text(md, encoding="utf-8")
        else:
            click.echo(md)
    run_guarded(go, ctx)


# staff GIS (department packages, QGIS projects, PostGIS grants): its commands live in staff/
cli.add_command(staff_cli.access)
cli.add_command(staff_cli.staff)


def main() -> None:
    quiet_warnings()
    cli(prog_name="uozu-gis")


if __name__ == "__main__":
    main()
