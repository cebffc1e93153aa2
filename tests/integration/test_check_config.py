"""`rota check-config` as a user runs it: the examples pass, errors exit 2 naming the file
and the field, warnings go to stderr, and what it prints is a config rota reads back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import REPO

EXAMPLES = sorted((REPO / "examples").glob("*.toml"))
# examples/custom-policy.toml names examples/zone_policy.py as its docs say to run it:
# with the examples directory on PYTHONPATH.
WITH_EXAMPLES = os.pathsep.join(
    p for p in (str(REPO / "examples"), os.environ.get("PYTHONPATH", "")) if p
)


def check(
    path: Path | str, cwd: Path = REPO, pythonpath: str | None = WITH_EXAMPLES
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [sys.executable, "-m", "rota", "check-config", str(path)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
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


def test_the_custom_policy_example_is_imported_and_checked() -> None:
    result = check("examples/custom-policy.toml")
    assert result.returncode == 0, result.stderr
    assert 'algorithm = "zone_policy:ZonePolicy"' in result.stdout
    assert '{ header = "x-zone", zones = { api-eu-1 = "eu",' in result.stdout
    assert "backup = true" in result.stdout


def test_a_custom_policy_that_cannot_be_imported_exits_2(tmp_path: Path) -> None:
    text = (REPO / "examples/custom-policy.toml").read_text()
    path = tmp_path / "site.toml"
    path.write_text(text)
    result = check(path, pythonpath=os.environ.get("PYTHONPATH", ""))
    assert result.returncode == 2
    assert result.stderr == (
        f"rota: {path}: pools.api.algorithm: "
        "cannot import \"zone_policy:ZonePolicy\": No module named 'zone_policy'\n"
    )
    # Options the class refuses: reported against options, in the class's words.
    path.write_text(text.replace('header = "x-zone"', "header = 3"))
    result = check(path)
    assert result.returncode == 2
    assert result.stderr == (
        f"rota: {path}: pools.api.options: ZonePolicy(options) raised ValueError: "
        "header: expected a header name, got 3\n"
    )


def test_a_custom_policy_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(
        "class Mine:\n    def __init__(self, options):\n        pass\n"
        "    def pick(self, request, servers):\n        return servers[0]\n"
    )
    (tmp_path / "site.toml").write_text(
        '[listeners.web]\nbind = "127.0.0.1:0"\n[[listeners.web.routes]]\npool = "a"\n'
        '[pools.a]\nalgorithm = "mine:Mine"\nservers = [{ host = "127.0.0.1", port = 5001 }]\n'
    )
    result = check("site.toml", cwd=tmp_path, pythonpath=str(REPO / "src"))
    assert result.returncode == 0, result.stderr
