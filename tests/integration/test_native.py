"""The compiled hot modules (rota.native): used when built and current, never when stale or
when ROTA_PURE_PYTHON is set. Each case runs a fresh interpreter, as a user's rota would."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rota import native
from tests.support.procs import fresh_python

SRC = Path(native.__file__).resolve().parent.parent

# Prints where each listed module came from, then what rota.native reports.
PROBE = """
import importlib, rota.native as n
for m in n.COMPILED:
    print(m, importlib.import_module(m).__file__)
print("describe:", n.describe())
"""


def probe(src: Path, **env: str) -> tuple[dict[str, str], str, str]:
    done = fresh_python("-c", PROBE, pythonpath=str(src), cwd=src, **env)
    done.check_returncode()
    files = {}
    describe = ""
    for line in done.stdout.splitlines():
        if line.startswith("describe: "):
            describe = line.removeprefix("describe: ")
        else:
            module, path = line.split(" ", 1)
            files[module] = path
    return files, describe, done.stderr


needs_build = pytest.mark.skipif(
    not native.built(), reason="no compiled build here (no C compiler, or ROTA_PURE_PYTHON)"
)


def test_pure_python_env_loads_every_listed_module_from_source() -> None:
    files, describe, _ = probe(SRC, **{native.PURE_ENV: "1"})
    assert set(files) == set(native.COMPILED)
    assert all(path.endswith(".py") for path in files.values()), files
    assert describe == "pure Python"


@needs_build
def test_a_current_build_is_what_runs() -> None:
    files, describe, stderr = probe(SRC)
    assert all(not path.endswith(".py") for path in files.values()), files
    assert (
        describe
        == f"{len(native.COMPILED)} of {len(native.COMPILED)} hot modules compiled with mypyc"
    )
    assert stderr == ""


def copy_of_the_tree(tmp_path: Path) -> Path:
    """A copy of the package with its build (mtimes kept): what a user's checkout has."""
    shutil.copytree(SRC / "rota", tmp_path / "rota", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@needs_build
def test_an_edited_source_is_never_shadowed_by_its_stale_build(tmp_path: Path) -> None:
    src = copy_of_the_tree(tmp_path)
    built = os.stat(native.compiled_path("rota.http.rules"))
    os.utime(src / "rota" / "http" / "rules.py", (built.st_atime, built.st_mtime + 10))

    files, describe, stderr = probe(src)
    assert all(path.endswith(".py") for path in files.values()), files
    assert all(path.startswith(str(src)) for path in files.values()), files
    assert describe == "pure Python"
    assert "rota.http.rules" in stderr and "running pure Python" in stderr


@needs_build
def test_an_incomplete_build_is_not_used_at_all(tmp_path: Path) -> None:
    src = copy_of_the_tree(tmp_path)
    missing = native.compiled_path("rota.pool")
    os.remove(src / os.path.relpath(missing, SRC))

    files, describe, stderr = probe(src)
    assert all(path.endswith(".py") for path in files.values()), files
    assert describe == "pure Python"
    assert "incomplete" in stderr


def test_without_a_build_nothing_compiled_is_imported(tmp_path: Path) -> None:
    src = copy_of_the_tree(tmp_path)
    shutil.rmtree(src / "rota" / "_compiled", ignore_errors=True)

    files, describe, stderr = probe(src)
    assert all(path.endswith(".py") for path in files.values()), files
    assert describe == "pure Python"
    assert stderr == ""
