"""The sheet never slows the maps (publish/server/pdf_pool.py).

Through the real app (``create_app`` over a published project with the pipe-sheet roles): a
sheet renders in the low-priority child process; while every slot is taken another sheet
request is answered at once with 429, ``Retry-After`` and the bilingual message, and map
requests are served meanwhile; the slot is free again after the answer.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyogrio
import pytest
from publish_fixtures import make_project

from config.messages import text
from publish.server import pdf_pool

EXECUTE = "/api/processes/pipe-sheet/execution"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from publish.build import publish
    from publish.server.app import create_app

    project = make_project(tmp_path_factory.mktemp("pool"), roles=True, n_pipes=40)
    res = publish(project)
    parcel = pyogrio.read_dataframe(res.store, layer="parcels", max_features=1).iloc[0]
    return create_app(project).test_client(), project, parcel


def _body(parcel: Any) -> str:
    return json.dumps({"inputs": {"oaza": parcel["oaza"], "chiban": parcel["chiban"],
                                  "scale": 500, "paper": "A4"}})


def test_sheet_renders_in_a_low_priority_process(app: Any) -> None:
    client, project, parcel = app
    r = client.post(EXECUTE, data=_body(parcel), content_type="application/json")
    assert r.status_code == 200 and r.get_data()[:5] == b"%PDF-"
    assert r.headers["Cache-Control"] == "no-store"
    pool = pdf_pool.pool_for(str(project.public_dir.resolve()))
    child_nice = pool.executor().submit(os.nice, 0).result(timeout=60)
    assert child_nice >= os.nice(0) + pdf_pool.NICE
    assert pool.executor().submit(os.getpid).result(timeout=60) != os.getpid()


def test_busy_is_429_with_retry_after_and_maps_keep_answering(app: Any) -> None:
    client, project, parcel = app
    pool = pdf_pool.pool_for(str(project.public_dir.resolve()))
    held = [pool.slots.acquire() for _ in range(pool.slots.n)]  # another worker renders
    assert all(held)
    try:
        r = client.post(EXECUTE, data=_body(parcel), content_type="application/json")
        assert r.status_code == 429
        wait = int(r.headers["Retry-After"])
        assert wait >= 1
        assert r.get_json()["description"] == text("sheet_busy", seconds=wait)
        assert r.headers["Cache-Control"] == "no-store"
        # the maps do not wait for the sheet
        assert client.get("/maps/pipe.html").status_code == 200
        assert client.get("/api/collections/sewer_pipes/items?f=json&limit=5").status_code == 200
    finally:
        for fh in held:
            pool.slots.release(fh)
    again = client.post(EXECUTE, data=_body(parcel), content_type="application/json")
    assert again.status_code == 200 and again.get_data()[:5] == b"%PDF-"
    # a user error stays a bilingual 400 from the child, and frees the slot too
    bad = client.post(EXECUTE, data=json.dumps({"inputs": {"oaza": parcel["oaza"],
                                                           "chiban": "99999-9"}}),
                      content_type="application/json")
    assert bad.status_code == 400 and "99999-9" in bad.get_json()["description"]
    fh = pool.slots.acquire()  # every slot free again
    assert fh is not None
    pool.slots.release(fh)
