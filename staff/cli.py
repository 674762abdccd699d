"""``uozu-gis access`` and ``uozu-gis staff grants|export``: the staff commands.

Registered on the main group at the end of ``cli.py``. The click context object is cli's
``Ctx`` (project, store, json, out, log); this module does not import ``cli`` (that would be a
cycle), so it relies only on those attributes.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import click

from config.errors import EtlError
from config.messages import text
from staff.policy import access_matrix

MARK = {"all": "○", "partial": "△", "none": "×", True: "○", False: "×"}


class CtxLike(Protocol):
    """What the commands use of cli's ``Ctx``."""

    project: Any
    store: str | None
    json: bool
    debug: bool

    def out(self, data: Any, human: str) -> None: ...

    def log(self, msg: str) -> None: ...


def guarded(ctx: CtxLike, fn: Callable[[], None]) -> None:
    """Domain errors -> ``Error: …`` and exit 1 (cli's rule); tracebacks only with --debug."""
    try:
        fn()
    except EtlError as e:
        if ctx.debug:
            traceback.print_exc()
        if ctx.json:
            errs = getattr(e, "errors", [e])
            click.echo(json.dumps({"ok": False, "errors": [str(x) for x in errs]},
                                  ensure_ascii=False))
        raise click.ClickException(str(e)) from None


def _title(t: dict[str, str] | None) -> str:
    """A title in both languages, as every message of the CLI (``ja / en``)."""
    if not t:
        return ""
    return t["ja"] if not t.get("en") or t["en"] == t["ja"] else f"{t['ja']} / {t['en']}"


def matrix_text(m: dict[str, Any], every_column: bool) -> str:
    """The matrix as a table, one column per department: layers, their quarantine rows where
    not everyone reads them, and the columns where departments differ: a confidential column
    of another layer, and every column of a confidential layer some department reads only in
    part (△); every column with ``--all``."""
    from rich.console import Console
    from rich.table import Table

    depts = [d["id"] for d in m["departments"]]
    table = Table(box=None, pad_edge=False, show_lines=False)
    table.add_column(text("access_layer"))
    table.add_column(text("access_level"))
    for d in depts:
        table.add_column(d, justify="center")
    for L in m["layers"]:
        table.add_row(f"{L['layer']}  {_title(L['title'])}", L["level"],
                      *(MARK[L["read"][d]] for d in depts))
        in_part = L["level"] == "confidential" and "partial" in L["read"].values()
        for c in L["columns"]:
            if every_column or in_part or (c["level"] == "confidential"
                                           and L["level"] != "confidential"):
                table.add_row(f"  .{c['name']}  {_title(c['title'])}".rstrip(), c["level"],
                              *(MARK[c["read"][d]] for d in depts))
        if every_column or not all(L["quarantine"].values()):
            table.add_row(f"  ({text('staff_quarantine')})", "",
                          *(MARK[L["quarantine"][d]] for d in depts))
    names = "\n".join(f"{d['id']}: {d['name']['ja']} / {d['name']['en']}"
                      for d in m["departments"])
    console = Console(width=200, no_color=True, highlight=False, record=True)
    with console.capture() as cap:
        console.print(table)
    return "\n".join([text("access_title"), names, "", cap.get().rstrip(), "",
                      text("access_legend")])


@click.command("access")
@click.option("--all", "every_column", is_flag=True,
              help="全列を表示 / show every column (default: layers and confidential columns).")
@click.pass_obj
def access(ctx: CtxLike, every_column: bool) -> None:
    """部署ごとの閲覧権限 / Access matrix: department × layer/field (from the one policy).

    \b
    Example:
        uozu-gis access
        uozu-gis access --all
        uozu-gis --json access

    Columns are listed where departments differ: a confidential field of another layer, and
    every column of a confidential layer that some department reads only in part (△).
    """
    def go() -> None:
        m = access_matrix(ctx.project)
        ctx.out(m, matrix_text(m, every_column))
    guarded(ctx, go)


@click.group("staff")
def staff() -> None:
    """統合型GIS: 部署ロールと部署パッケージ / Staff GIS: department roles and packages.

    \b
    Example:
        uozu-gis staff export --department kensetsu --out out/kensetsu
        uozu-gis --store postgresql://uozu_etl@db/gis staff grants
    """


@staff.command("grants")
@click.pass_obj
def grants(ctx: CtxLike) -> None:
    """PostGIS: 部署ロールとビューを作成・更新 / Create or update department roles and views.

    One transaction, idempotent; run it after every merge (the views follow the current run).
    Then grant the roles to your staff's own logins: GRANT <prefix>_dept_<id> TO <user>;

    \b
    Example:
        uozu-gis --store postgresql://uozu_etl@db.example.lg.jp/gis staff grants
        uozu-gis merge && uozu-gis staff grants
    """
    def go() -> None:
        from staff.grants import apply_grants

        res = apply_grants(ctx.project, ctx.store)
        for k in res.kept:
            ctx.log(text("staff_grants_kept", role=k["role"], detail=k["detail"]))
        human = text("staff_grants_done", roles=", ".join(r["role"] for r in res.roles.values()),
                     run=res.run_id, views=sum(len(r["views"]) for r in res.roles.values()),
                     seconds=res.seconds)
        if res.dropped:
            human += "\n" + text("staff_grants_dropped", roles=", ".join(res.dropped))
        ctx.out(res.as_dict(), human)
    guarded(ctx, go)


@staff.command("export")
@click.option("--department", "-d", "departments", multiple=True, required=True,
              metavar="ID", help="部署 id (複数可) / department id (repeatable).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="出力フォルダ (複数部署なら その下に <id>/) / package folder "
                   "(with several departments: <out>/<id>/).")
@click.option("--target", type=click.Choice(["gpkg", "postgis"]), default="gpkg",
              show_default=True,
              help="gpkg: 部署用GeoPackageを同梱 / a GeoPackage copy (the file is the boundary); "
                   "postgis: 部署ビューに接続 / read the department's views (pg_service.conf).")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True,
              help="プロジェクトの言語 / language of the QGIS project.")
@click.option("--basemap/--no-basemap", default=True, show_default=True,
              help="地理院タイルを背景に / GSI tiles as the basemap (offline it draws nothing).")
@click.pass_obj
def export(ctx: CtxLike, departments: tuple[str, ...], out: str, target: str, lang: str,
           basemap: bool) -> None:
    """部署パッケージ (GeoPackage + QGISプロジェクト) / Write a department's package.

    \b
    Example:
        uozu-gis staff export --department kensetsu --out /srv/share/gis/kensetsu
        uozu-gis staff export -d zeimu -d kensetsu --out packages
        uozu-gis --store postgresql://uozu_etl@db/gis staff export -d zeimu --target postgis --out p
    """
    def go() -> None:
        from staff.package import export_package
        from staff.policy import find_department

        for d in departments:  # unknown ids fail before anything is written
            find_department(ctx.project, d)
        results = []
        for d in departments:
            dst = Path(out) if len(departments) == 1 else Path(out) / d
            res = export_package(ctx.project, d, dst, store_url_=ctx.store,
                                 target=target, lang=lang, basemap=basemap)  # type: ignore[arg-type]
            results.append(res)
            ctx.log(text("staff_export_done", dept=d, out=res.out, layers=len(res.layers),
                         features=sum(res.layers.values()), run=res.run_id))
        human = "\n".join(str(r.out) for r in results)
        data = results[0].as_dict() if len(results) == 1 else [r.as_dict() for r in results]
        ctx.out(data, human)
    guarded(ctx, go)
