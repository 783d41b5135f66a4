"""The cron line: `make cron` prints it, it runs in cron's bare environment, `make cron-install` adds it once."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from risk import registry
from risk.config import Config

pytestmark = pytest.mark.system
TIMEOUT = 180
SCHEDULE = "*/10 * * * *"
FAKE_CRONTAB = """#!/bin/sh
# A stand-in for crontab(1) that keeps "the crontab" in $FAKE_CRONTAB_FILE, never the user's real one.
# Like the real one, it reads all of stdin before it replaces the table.
case "$1" in
  -l) [ -f "$FAKE_CRONTAB_FILE" ] || { echo "no crontab for $USER" >&2; exit 1; }; cat "$FAKE_CRONTAB_FILE" ;;
  -) cat > "$FAKE_CRONTAB_FILE.new" && mv "$FAKE_CRONTAB_FILE.new" "$FAKE_CRONTAB_FILE" ;;
  *) echo "fake crontab: unexpected arguments $*" >&2; exit 2 ;;
esac
"""


BARE = ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/nonexistent", "PIP_NO_INDEX=1", f"PIP_CONFIG_FILE={os.devnull}"]


def make(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)


def cron_line(cwd: Path = REPO) -> str:
    done = make("cron", cwd=cwd)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_make_cron_prints_one_line_with_cd_and_an_absolute_interpreter() -> None:
    line = cron_line()
    assert line.startswith(SCHEDULE + " ")
    assert f"cd {REPO} && " in line
    assert f"{REPO}/.venv/bin/python {REPO}/fullprocess.py" in line
    assert "/path/to/repo" not in line


def test_the_cron_command_runs_in_a_bare_environment(config: Config, tmp_path: Path) -> None:
    command = cron_line().split(maxsplit=5)[5]
    script = f"{REPO}/fullprocess.py"
    log = tmp_path / "cron.log"
    assert script in command
    assert f"{REPO}/logs/cron.log" in command
    runs_and_deploys(command, script, f"{REPO}/logs/cron.log", config, log)


def runs_and_deploys(command: str, script: str, logged: str, config: Config, log: Path) -> None:
    """Run a cron command as cron would (bare environment, from /), on `config` and logging to `log`: it
    deploys version 1 of the miniature project."""
    command = command.replace(script, f"{script} --config {shlex.quote(str(config.config_path))}")
    command = command.replace(logged, shlex.quote(str(log)))
    done = subprocess.run([*BARE, "sh", "-c", command], cwd="/", capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert done.returncode == 0, log.read_text() if log.exists() else done.stderr
    assert registry.current(config.prod_folder).number == 1
    assert "fullprocess: deployed version 1" in log.read_text()


def fake_crontab(tmp_path: Path) -> tuple[dict[str, str], Path]:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "crontab").write_text(FAKE_CRONTAB)
    (fake_bin / "crontab").chmod(0o755)
    table = tmp_path / "crontab.txt"
    table.write_text("0 3 * * * /usr/local/bin/backup\n")
    return {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "FAKE_CRONTAB_FILE": str(table)}, table


def test_make_cron_install_adds_the_line_once(tmp_path: Path) -> None:
    env, table = fake_crontab(tmp_path)
    for _ in range(2):
        done = make("-o", ".venv/.installed", "cron-install", env=env)  # -o: never reinstall the venv here
        assert done.returncode == 0, done.stderr
        assert cron_line() in done.stdout
    assert table.read_text().splitlines() == ["0 3 * * * /usr/local/bin/backup", cron_line()]


def as_cron_runs_it(line: str) -> str:
    """The command cron hands to sh: an unescaped % would end it (the rest is stdin); \\% is a plain %."""
    command = line.split(maxsplit=5)[5]
    assert not re.search(r"(?<!\\)%", command), command
    return command.replace("\\%", "%")


@pytest.fixture
def odd_checkout(tmp_path: Path) -> Path:
    """A checkout whose path holds a space, a quote and a percent sign, sharing the repository's venv."""
    root = tmp_path / "it's 100% a rev B"
    root.mkdir()
    for path in (REPO / "Makefile", *REPO.glob("*.py"), *REPO.glob("*.txt")):  # cronjob.txt, requirements.txt
        shutil.copy(path, root / path.name)
    for name in ("risk", "templates"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".venv").symlink_to(REPO / ".venv")
    return root


def test_the_cron_line_of_a_path_with_a_space_a_quote_and_a_percent_runs_from_root(
        odd_checkout: Path, config: Config, tmp_path: Path) -> None:
    quoted = shlex.quote(str(odd_checkout))
    line = cron_line(odd_checkout)
    assert f"cd {quoted.replace('%', chr(92) + '%')} && " in line
    command = as_cron_runs_it(line)
    script, log = f"{quoted}/fullprocess.py", tmp_path / "cron.log"
    assert f"{quoted}/.venv/bin/python {script} >> {quoted}/logs/cron.log 2>&1" in command
    runs_and_deploys(command, script, f"{quoted}/logs/cron.log", config, log)


def test_make_cron_install_in_a_path_with_a_space_adds_the_line_once(odd_checkout: Path, tmp_path: Path) -> None:
    env, table = fake_crontab(tmp_path)
    for _ in range(2):
        done = make("-o", ".venv/.installed", "cron-install", env=env, cwd=odd_checkout)
        assert done.returncode == 0, done.stderr
        assert cron_line(odd_checkout) in done.stdout
    assert table.read_text().splitlines() == ["0 3 * * * /usr/local/bin/backup", cron_line(odd_checkout)]
