# The two set-up commands of the README. Both install what they need first (idempotent).
PY := .venv/bin/python

.PHONY: demo test setup lint

setup:
	bash scripts/setup.sh

# Main job on the embedded default store (GeoPackage): sample exports -> merge -> publish.
demo: setup
	.venv/bin/uozu-gis sample
	.venv/bin/uozu-gis merge
	@if .venv/bin/uozu-gis publish --help >/dev/null 2>&1; then .venv/bin/uozu-gis publish; fi

test: setup
	.venv/bin/ruff check .
	.venv/bin/pytest -q -p no:cacheprovider

lint: setup
	.venv/bin/ruff check .
