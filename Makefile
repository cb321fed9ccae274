# Three commands on a fresh machine: `make run`, `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run demo test lint bench format clean i18n i18n-compile

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Translations: the .po files are the source (committed), the .mo files are built from them.
LOCALES := bot/locales
PO := $(wildcard $(LOCALES)/*/LC_MESSAGES/messages.po)
MO := $(PO:.po=.mo)

$(LOCALES)/%/LC_MESSAGES/messages.mo: $(LOCALES)/%/LC_MESSAGES/messages.po $(STAMP)
	$(VENV)/bin/pybabel compile -d $(LOCALES) -D messages -l $* --statistics

i18n-compile: $(MO)

# For a translator: collect the texts from the source, then bring every catalog up to date.
i18n: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -k __ -k ngettext:1,2 --no-location --sort-output \
		-w 96 --project=cryptopay-shop-bot -o $(LOCALES)/messages.pot bot
	$(VENV)/bin/pybabel update -i $(LOCALES)/messages.pot -d $(LOCALES) -D messages -w 96 \
		--ignore-obsolete --ignore-pot-creation-date
	$(MAKE) i18n-compile

install: $(STAMP) i18n-compile

run: $(STAMP) i18n-compile
	$(PY) -m bot

# The shop in the browser against local stand-ins of Telegram and Crypto Pay: no tokens.
demo: $(STAMP) i18n-compile
	$(PY) -m bot demo

test: $(STAMP) i18n-compile
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: $(STAMP)
	@for b in bench/cryptopay_client.py bench/storage.py bench/checkout.py bench/webhook.py bench/delivery.py bench/miniapp.py bench/broadcast.py; do \
		if [ -f $$b ]; then echo "== $$b"; $(PY) $$b || exit 1; fi; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
