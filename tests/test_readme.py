"""The README's curl lines, run as written (but for the port) against a live gunicorn on the deployed project,
from the project's folder as a reader would from the checkout; and the README stays a front door."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from risk import reporting
from risk.config import Config
from tests.test_serve import REPO, server  # noqa: F401 (the fixture)

pytestmark = pytest.mark.system
README = REPO / "README.md"


def curl_lines(text: str) -> list[str]:
    """Every command in a page's sh blocks that starts with curl and calls the local server (a line ending in
    a backslash continues on the next)."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    commands = [command.strip() for block in blocks for command in re.sub(r"\\\n\s*", " ", block).splitlines()]
    return [command for command in commands if command.startswith("curl ") and "localhost:8000" in command]


def test_the_readme_is_a_front_door_of_at_most_200_lines_linking_existing_docs() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert text.index("make run") < text.index("## Daily use")
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert {"docs/operations.md", "docs/api.md", "docs/data-contract.md", "docs/drift.md", "docs/design.md",
            "docs/benchmarks.md", "docs/contributing.md"} <= set(links)
    assert [link for link in links if not (REPO / link).is_file()] == []


def test_every_curl_line_of_the_readme_and_docs_runs_against_a_live_server(server, deployed: Config) -> None:  # noqa: F811
    url, _ = server
    reporting.run_reporting(deployed)  # the report the README downloads exists after any deployment's tick
    pages = [README, *sorted((REPO / "docs").glob("*.md"))]
    lines = [line for page in pages for line in curl_lines(page.read_text(encoding="utf-8"))]
    assert len(curl_lines(README.read_text(encoding="utf-8"))) >= 5
    for line in lines:
        command = shlex.split(line.replace("localhost:8000", url.removeprefix("http://")), comments=True)
        command = [command[0], "--fail-with-body", "--max-time", "30", *command[1:]]
        if ">" in command:  # a redirect to a file, as a shell would do it
            target = command.index(">")
            command, out = command[:target], Path(deployed.root / command[target + 1])
        else:
            out = None
        done = subprocess.run(command, cwd=deployed.root, capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, f"{line}\n{done.stdout[:300]!r}\n{done.stderr[:300]!r}"
        if out is not None:
            out.write_bytes(done.stdout)
            assert out.stat().st_size > 0, line
