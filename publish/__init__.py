"""Publication: a leak-proof public store and the public server (OGC API via pygeoapi).

Entry points for the CLI: :func:`publish.build.publish` (``uozu-gis publish``) and
:func:`publish.server.app.serve` (``uozu-gis serve``). Modules: ``store`` (allow-listed CRS84
GeoPackage + self-check), ``apiconfig`` (pygeoapi config, OpenAPI, ja UI catalogue), ``release``
(release directories, atomic ``current`` switch), ``providers`` (pygeoapi OGR provider subclass),
``server`` (WSGI app + gunicorn), ``messages``/``errors`` (bilingual strings). See docs/publish.md.
"""
