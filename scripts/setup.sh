#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian 12 machine (idempotent).
#
# Why Debian's python3 (3.11) with --system-site-packages: pygeoapi's OGR provider needs the GDAL
# Python bindings (osgeo), which have no PyPI wheel; Debian ships them as python3-gdal.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
# python3-qgis + qgis-providers: PyQGIS (QGIS 3.22 LTR) writes and checks the staff QGIS projects,
# headless (QT_QPA_PLATFORM=offscreen); the venv sees it through --system-site-packages.
# nginx: the documented front (docs/deploy-nginx.md, tests/test_nginx_static.py); libsqlite3-mod-spatialite:
# the API reads GeoPackage geometries in SQL (GeomFromGPB, publish/server/providers.py).
APT_PKGS="python3-venv python3-gdal gdal-bin chromium fonts-noto-cjk fonts-ipaexfont-gothic postgresql-15-postgis-3 postgresql-15-pgrouting poppler-utils poppler-data python3-qgis qgis-providers nginx libsqlite3-mod-spatialite"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: apt-get install$missing" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
fi
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >&2
  .venv/bin/pip install -q -e '.[dev]' >&2
  rm -f .venv/.installed-*; touch "$stamp"
fi
