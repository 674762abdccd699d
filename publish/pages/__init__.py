"""Public map pages, built at publish from the project's page declarations and layer roles.

:func:`build_site` is what the release build calls, for the CLI and the Python API alike: one
builder (:mod:`publish.pages.page`) renders every page of ``publish.pages``; what a page does
follows from the roles of its layers (:mod:`publish.pages.roles`).
"""

from __future__ import annotations

from publish.model import SiteContext
from publish.pages.page import site_page


def build_site(ctx: SiteContext) -> None:
    """Write every declared page into ``ctx.site_dir/maps`` (and list them in maps.json)."""
    for page in ctx.project.config.publish.pages:
        site_page(ctx, page.id)
