# The two set-up commands of the README. Both install what they need first (idempotent).
PY := .venv/bin/python

.PHONY: demo test setup lint

setup:
	bash scripts/setup.sh

# Main job on the embedded default store (GeoPackage): sample exports -> merge -> publish.
demo: setup
	.venv/bin/uozu-gis sample
	.venv/bin/uozu-gis merge
	.venv/bin/uozu-gis publish
	@echo "Next: .venv/bin/uozu-gis serve   (then open http://127.0.0.1:5000/)"

test: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	.venv/bin/pytest -q -p no:cacheprovider -n 2  # the configuration the suite is run and timed in

lint: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports
