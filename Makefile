# Custos: `make run` serves the app on the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint bench loadtest migrate demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# A random SECRET_KEY for the embedded default, written once, never committed.
.env:
	$(PYTHON) -c "import secrets; print('SECRET_KEY=' + secrets.token_urlsafe(50))" > .env
	@echo "wrote .env with a new SECRET_KEY"

migrate: $(VENV)/.runtime .env
	@$(BIN)/python manage.py migrate_all

demo: migrate
	@$(BIN)/python manage.py seed_demo

# The Procfile's processes under config/run.py: the logins printed once the web answers,
# Ctrl-C stops each process cleanly (exec: make waits on it directly, no shell in between).
run: migrate
	@$(BIN)/python manage.py seed_demo --no-logins
	@echo "Starting the web process, the Celery worker and beat ..."
	@PORT=$(PORT) exec $(BIN)/python -m config.run

test: $(VENV)/.dev .env
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# mypy's settings and its list of modules not checked yet: pyproject.toml, [tool.mypy].
lint: $(VENV)/.dev .env
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run

bench: $(VENV)/.dev .env
	$(BIN)/python -m bench $(BENCH_ARGS)

# Many users at once: gunicorn, a Celery worker, PostgreSQL and Redis on 127.0.0.1, locust headless
# for LOAD_USERS users (default 50) and LOAD_DURATION seconds (default 75); writes bench/LOAD.md.
# Uses its own databases (custos_load, custos_load_ud; LOAD_DATABASE_URL, LOAD_USERDATA_DATABASE_URL)
# and Redis db 14 (LOAD_REDIS_URL), recreated each run. More options: python -m bench.load --help.
loadtest: $(VENV)/.dev .env
	$(BIN)/python -m bench.load $(LOAD_ARGS)

clean:
	rm -rf var/ test-output/
