"""Publication: a leak-proof public release and the public server (OGC API via pygeoapi).

Data walks one way (enforced by the import-linter contracts in pyproject.toml)::

    publish.model, publish.errors   what every part shares (columns, layers, site context)
    publish.pages                   map pages and the pipe sheet, from the specs' roles
    publish.build                   publish(): public store, pygeoapi config + OpenAPI, pages,
                                    atomic release switch (the CLI and Python build the same)
    publish.server                  the one-port WSGI app: pygeoapi per release, pages, processes

Entry points: :func:`publish.build.publish` (``uozu-gis publish``) and
:func:`publish.server.app.serve` (``uozu-gis serve``).
"""
