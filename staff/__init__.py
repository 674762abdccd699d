"""Staff 統合型GIS: access levels by department, enforced by the store, and QGIS projects.

One policy (:mod:`staff.policy`) decides what a department may read; everything else applies
it: the access matrix (``uozu-gis access``), the PostGIS group roles and views
(:mod:`staff.grants`), the per-department GeoPackage package (:mod:`staff.package`) and its
QGIS project (:mod:`staff.qgis_plan`, written by PyQGIS in a child process:
``staff/qgis_build.py``).

Nothing in config/, etl/ or publish/ imports this package.
"""
