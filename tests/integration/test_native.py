"""The compiled hot modules (rota.native): used when built and current, never when stale or
when ROTA_PURE_PYTHON is set. Each case runs a fresh interpreter, as a user's rota would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rota import native

SRC = Path(native.__file__).resolve().parent.parent

# Prints where each listed module came from, then what rota.native reports.
PROBE = """
import importlib, rota.native as n
for m in n.COMPILED:
    print(m, importlib.import_module(m).__file__)
print("describe:", n.describe())
"""


def probe(src: Path, **env: str) -> tuple[dict[str, str], str, str]:
    environment = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    environment.update(env, PYTHONPATH=str(src))
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=environment,
        cwd=src,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
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


@needs_build
def test_an_edited_source_is_never_shadowed_by_its_stale_build(tmp_path: Path) -> None:
    # A copy of the installed tree, with one source edited after the build.
    shutil.copytree(SRC / "rota", tmp_path / "rota", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(native.group_path(), tmp_path)
    edited = tmp_path / "rota" / "http" / "rules.py"
    built = os.stat(tmp_path / os.path.relpath(native.extension_path("rota.http.rules"), SRC))
    os.utime(edited, (built.st_atime, built.st_mtime + 10))

    files, describe, stderr = probe(tmp_path)
    assert all(path.endswith(".py") for path in files.values()), files
    assert all(path.startswith(str(tmp_path)) for path in files.values()), files
    assert describe == "pure Python"
    assert "rota.http.rules" in stderr and "running pure Python" in stderr
