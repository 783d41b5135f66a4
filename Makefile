# The front door. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
PORT ?= 8000
# cronjob.txt with /path/to/repo replaced by this folder, shell-quoted when it needs it (a space, a quote) and
# with cron's `%` escaped; a folder whose name holds a newline cannot go in a crontab.
CRONLINE = $(PYTHON) -c 'import os, shlex, sys; here = os.getcwd(); "\n" in here and sys.exit("make: a folder with a newline in its name cannot go in a crontab"); quoted = shlex.quote(here).replace("%", "\\%"); sys.stdout.writelines(line.replace("/path/to/repo", quoted) for line in open("cronjob.txt", encoding="utf-8") if not line.startswith("\#"))'

.PHONY: run test test-fast lint serve cron cron-install bench bench-drift bench-scale bench-retention clean

# Direct dependencies are pinned in requirements*.txt; constraints.txt pins the transitive ones too.
$(STAMP): requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $@

$(DEVSTAMP): $(STAMP) requirements-dev.txt constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

# The course story on the shipped data: a first model from the practice data, then new source data arrives.
run: $(STAMP)
	$(PY) fullprocess.py --config config.practice.json
	$(PY) fullprocess.py --config config.json

# Every test, spread over two processes (pytest-xdist); each process builds the deployed miniature project once.
test: $(DEVSTAMP) system-deps
	$(PY) -m ruff check .
	promtool test rules monitoring/alerts_test.yml
	promtool check config monitoring/prometheus.yml
	amtool check-config monitoring/alertmanager.yml
	$(PY) -m pytest -n 2

# The edit loop (under a minute): everything but the tests marked system (real processes) or slow (a second or
# more). Two processes: at 800 tests the suite's CPU time (about 70 s) is past what one core does in a minute.
test-fast: $(DEVSTAMP) system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 -m "not system and not slow"

# Debian's chromium, for the browser tests (tests/test_dashboard.py, tests/test_reports_*.py), and poppler-utils
# (pdftoppm, pdftotext) to read the PDF report in tests, curl for the README's curl lines (tests/test_readme.py),
# promtool and amtool for the alert rules; each installed only when missing.
.PHONY: system-deps
system-deps: /usr/bin/chromium /usr/bin/pdftoppm /usr/bin/curl /usr/bin/promtool /usr/bin/amtool

/usr/bin/chromium:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

/usr/bin/pdftoppm:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y poppler-utils

/usr/bin/curl:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y curl

# promtool and amtool check and unit-test the alert rules (monitoring/); the servers are not started.
/usr/bin/promtool:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus

/usr/bin/amtool:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus-alertmanager

lint: $(DEVSTAMP)
	$(PY) -m ruff check .

serve: $(STAMP)
	RISK_BIND=127.0.0.1:$(PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py

cron:
	@$(CRONLINE)

cron-install: $(STAMP)
	@command -v crontab >/dev/null || { echo "crontab not found: install cron (apt-get install cron)"; exit 1; }
	@mkdir -p logs
	@line=$$($(CRONLINE)) && script="$${line#*&& }" && script="$${script%%/.venv/bin/python *}/fullprocess.py" && \
	{ crontab -l 2>/dev/null | grep -vF -e "$$script" -e "$(CURDIR)/fullprocess.py" || true; printf '%s\n' "$$line"; } \
	| crontab - && echo "installed in the crontab:" && crontab -l | grep -F "$$script"

bench: $(DEVSTAMP)
	$(PY) bench/run.py

# The drift decision replayed on synthetic batches and streams fitted to the course data (tens of minutes on 2
# cores; `$(PY) bench/bench_drift.py --quick` for a short run). Exits 1 when the default misses a target.
bench-drift: $(STAMP)
	$(PY) bench/bench_drift.py

# A real portfolio at real size (issues 13, 23): 1M clients x 50 months (the first 49, 49M rows, taken in, the 50th
# the timed tick) beside 10k and 100k clients, timed in the same run: the API, training, diagnostics, reporting,
# the ticks, ingestion and the idle tick against their baselines (about 20 minutes on 2 cores, up to 8 GiB of temp
# files, training's peak about 3.3 GiB); not part of `make bench`. QUICK=1: 1/10 of the clients over 6 months, once.
bench-scale: $(STAMP)
	nice -n 10 $(PY) bench/bench_scale.py $(if $(QUICK),--quick)

# The retention loop's measurement (issue 24): a simulated portfolio where a call helps, does nothing or harms,
# monthly ticks through the real pipeline and API; the effect's interval and verdict against the known truth
# (about 10 minutes on 2 cores at 20 seeds per scenario; QUICK=1 runs one seed each, 6 months).
bench-retention: $(STAMP)
	nice -n 10 $(PY) bench/bench_retention.py $(if $(QUICK),--quick,--seeds 20)

clean:
	rm -rf ingesteddata/* practicemodels/* production_deployment/* logs/*.log
	git checkout -- ingesteddata/.gitkeep practicemodels/.gitkeep production_deployment/.gitkeep logs/.gitkeep
