# The two commands of the README, and a few helpers for developers.
.PHONY: demo test install schema lint

demo:  ## install everything, start the lab, web server and worker with demo data
	./scripts/bootstrap.sh
	./scripts/demo.sh

test:  ## install everything and run the whole suite (PostgreSQL, then SQLite smoke)
	./scripts/test.sh

install:
	./scripts/bootstrap.sh

schema:
	./scripts/schema.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
