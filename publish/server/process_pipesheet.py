"""pygeoapi process ``pipe-sheet``: the pipe sheet PDF (:mod:`publish.pages.pipesheet`), OGC API.

Registered per release by the build (``publish.build.apiconfig.process_resource``, by id and
dotted path), and only where the project publishes a ``parcel`` and a ``pipe`` layer::

    pipe-sheet:
      type: process
      processor:
        name: publish.server.process_pipesheet.PipeSheetProcessor
        store: <release>/public.gpkg      # the public store only
        project_root: <project root>      # config + specs (titles, code lists, contact)
        map_page: <page>.html             # the map with the parcel search (the sheet's QR)

The QR code links to that page on the URL the client used (:data:`PUBLIC_ROOT`, set by the
server per request), so a sheet printed from ``serve --port 8080`` does not point at :5000.

Execution (pygeoapi 0.21 executes with POST only; the map's parcel popup does exactly this)::

    POST /api/processes/pipe-sheet/execution
    {"inputs": {"oaza": "<大字>", "chiban": "１２３－４", "scale": 500, "paper": "A4"}}
    -> 200 application/pdf (the sheet) | 400 JSON {"description": "...ja / en..."}

Why a process rather than a bespoke route: it is described in the OpenAPI document and at
``/api/processes/pipe-sheet`` like the rest of the API, and the input checks live in one place.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from config.messages import text
from publish.build.apiconfig import PROCESS_ID
from publish.pages.pipesheet import SCALES
from publish.server import pdf_pool
from publish.server.links import PUBLIC_ROOT

LOGGER = logging.getLogger(__name__)
PAPERS = ["A4", "A3", "A4-landscape", "A3-landscape"]

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": PROCESS_ID,
    "title": {"ja": "配管参考図（PDF）", "en": "Pipe sheet (PDF)"},
    "description": {
        "ja": "大字と地番を指定すると、その筆を中心に上下水道管・マンホール・消火栓を固定縮尺"
              "（1/500 など、100%印刷時）で描いた1ページのPDF（参考図）を返します。",
        "en": "Given a town (oaza) and lot number, returns a one-page PDF reference sheet of "
              "the water and sewer pipes, manholes and hydrants around that parcel at a fixed "
              "scale (e.g. 1:500 when printed at 100 %).",
    },
    "jobControlOptions": ["sync-execute"],
    "outputTransmission": ["value"],
    "keywords": ["配管図", "下水道", "水道", "地番", "pipe sheet", "PDF"],
    "links": [],
    "inputs": {
        "oaza": {
            "title": {"ja": "大字", "en": "Town (oaza)"},
            "description": {"ja": "地番図の大字名（地番図に書かれているとおり）",
                            "en": "Town name as written in the parcel map"},
            "schema": {"type": "string", "maxLength": 40},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "chiban": {
            "title": {"ja": "地番", "en": "Lot number"},
            "description": {"ja": "例: 123-4、123番4、１２３－４、123の4",
                            "en": "e.g. 123-4 (variants such as 123番4 are accepted)"},
            "schema": {"type": "string", "maxLength": 40},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "scale": {
            "title": {"ja": "縮尺 (1/n)", "en": "Scale (1:n)"},
            "schema": {"type": "integer", "enum": list(SCALES), "default": 500},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "paper": {
            "title": {"ja": "用紙", "en": "Paper"},
            "schema": {"type": "string", "enum": PAPERS, "default": "A4"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "sheet": {
            "title": {"ja": "配管参考図", "en": "Pipe sheet"},
            "schema": {"type": "string", "contentMediaType": "application/pdf",
                       "contentEncoding": "binary"},
        },
    },
    "example": {"inputs": {"oaza": "...", "chiban": "123-4", "scale": 500, "paper": "A4"}},
}

def _text(data: dict[str, Any], key: str, default: str | None = None) -> str:
    v = data.get(key, default)
    if v is None or (isinstance(v, str) and not v.strip()):
        raise ProcessorExecuteError(user_msg=text("err_input_missing", key=key))
    if isinstance(v, bool) or not isinstance(v, str | int) or len(str(v)) > 40 or "\x00" in str(v):
        raise ProcessorExecuteError(user_msg=text("err_input_invalid", key=key))
    return str(v)


class PipeSheetProcessor(BaseProcessor):
    """OGC API - Processes wrapper of :func:`publish.pages.pipesheet.make_pipe_sheet`."""

    def __init__(self, processor_def: dict[str, Any]) -> None:
        super().__init__(processor_def, PROCESS_METADATA)
        self.store = Path(processor_def["store"])
        self.project_root = str(processor_def["project_root"])
        self.map_page = str(processor_def.get("map_page") or "")
        self.map_url = processor_def.get("map_url")  # a fixed URL (tests, older releases)

    def page_url(self) -> str:
        """The map page for the QR code: on the host the client used when serving."""
        if self.map_url:
            return str(self.map_url)
        return f"{PUBLIC_ROOT.get()}/maps/{self.map_page}" if self.map_page else PUBLIC_ROOT.get()

    def execute(self, data: dict[str, Any], outputs: Any = None) -> tuple[str, bytes]:
        """Inputs -> (``application/pdf``, bytes); user errors become a bilingual 400.

        Anything else is logged here and answered with a message naming no server detail
        (pygeoapi's manager would put the exception text, paths included, into the answer).
        """
        if not isinstance(data, dict):
            raise ProcessorExecuteError(user_msg=text("err_inputs_object",
                                                      example='{"inputs": {...}}'))
        oaza, chiban = _text(data, "oaza"), _text(data, "chiban")
        try:
            scale = int(data.get("scale") or 500)
        except (TypeError, ValueError, OverflowError):
            raise ProcessorExecuteError(user_msg=text("err_input_scale")) from None
        paper = _text(data, "paper", "A4")
        # rendered in the server's low-priority sheet process (publish.server.pdf_pool): the
        # maps keep the CPU; the gate in front of this request already holds a slot
        pool = pdf_pool.pool_for(pdf_pool.key_of_store(self.store))
        kind, out = pool.render(self.project_root, self.store, oaza=oaza, chiban=chiban,
                                scale=scale, paper=paper, map_url=self.page_url())
        if kind == "user":
            raise ProcessorExecuteError(user_msg=str(out))
        if kind != "ok":
            raise ProcessorExecuteError(user_msg=text("err_sheet_failed"))
        return "application/pdf", out

    def __repr__(self) -> str:
        return f"<PipeSheetProcessor> {self.store.parent.name}"
