"""`rota check-config` as a user runs it: the examples pass, errors exit 2 naming the file
and the field, warnings go to stderr, and what it prints is a config rota reads back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import REPO

EXAMPLES = sorted((REPO / "examples").glob("*.toml"))


def check(path: Path | str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rota", "check-config", str(path)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=20,
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_pass(path: Path, tmp_path: Path) -> None:
    result = check(path.relative_to(REPO))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "[listeners." in result.stdout and "[pools." in result.stdout
    # What it prints is itself a valid configuration, and prints the same again.
    effective = tmp_path / "effective.toml"
    effective.write_text(result.stdout)
    again = check(effective)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[2:] == result.stdout.splitlines()[2:]


def test_the_seed_file_prints_its_listeners_equivalent() -> None:
    result = check("server_db.json")
    assert result.returncode == 0, result.stderr
    assert "[listeners.default]" in result.stdout
    assert 'bind = "127.0.0.1:5432"' in result.stdout
    assert '[[listeners.default.routes]]\npool = "default"' in result.stdout


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            '[listeners.web]\nbind = "127.0.0.1:0"\n[[listeners.web.routes]]\npool = "apii"\n'
            '[pools.api]\nservers = [{ host = "127.0.0.1", port = 5001 }]\n',
            'listeners.web.routes[0].pool: no pool named "apii" (pools: api)',
        ),
        (
            '[listeners.web]\nbind = "127.0.0.1:0"\n[[listeners.web.routes]]\npth = "/"\n'
            'pool = "api"\n[pools.api]\nservers = [{ host = "127.0.0.1", port = 5001 }]\n',
            'listeners.web.routes[0]: unknown field "pth" (did you mean "path"?)',
        ),
        ("[listeners.web\n", "invalid TOML"),
    ],
)
def test_errors_exit_2_naming_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text)
    result = check(path)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"rota: {path}: {field}"), line


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = check(tmp_path / "nope.toml")
    assert (result.returncode, result.stderr) == (
        2,
        f"rota: {tmp_path}/nope.toml: file not found\n",
    )


def test_an_unused_pool_warns_on_stderr_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        '[listeners.web]\nbind = "127.0.0.1:0"\n[[listeners.web.routes]]\npool = "a"\n'
        '[pools.a]\nservers = [{ host = "127.0.0.1", port = 5001 }]\n'
        '[pools.spare]\nservers = [{ host = "127.0.0.1", port = 5002 }]\n'
    )
    result = check(path)
    assert result.returncode == 0
    assert result.stderr == f"rota: warning: {path}: pools.spare: not used by any listener\n"
    assert "[pools.spare]" in result.stdout
