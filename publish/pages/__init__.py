"""Public map pages, built at publish from the project's page declarations and layer roles.

:func:`build_site` is what the release build calls, for the CLI and the Python API alike.
"""

from __future__ import annotations

from publish.model import SiteContext
from publish.pages import hazard, pipe


def build_site(ctx: SiteContext) -> None:
    """Write every page of the project into ``ctx.site_dir`` (and list them in maps.json)."""
    for builder in (pipe.site_builder, hazard.site_builder):
        builder(ctx)
