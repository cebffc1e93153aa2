"""The benches' refusal to measure a stale or incomplete compiled build (bench.machine).

Each test builds a source tree in a temp dir with rota's own native.py in it, sources for
every compiled module and (empty) extension files where a build would put them, and sets
their times: the rules under test are rota.native's, read from that tree as a bench does.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import ModuleType

import pytest
from bench.machine import build_problem, native_of, require_current_build

from tests.support.procs import fresh_python

REPO = Path(__file__).resolve().parents[2]
BUILT, EDITED = time.time() - 100, time.time() - 10  # sources older than the build, or newer


def _tree(root: Path) -> tuple[Path, ModuleType]:
    """A source tree holding rota.native and a source file for each compiled module, all
    written before the build below."""
    src = root / "src"
    (src / "rota").mkdir(parents=True)
    shutil.copy(REPO / "src" / "rota" / "native.py", src / "rota" / "native.py")
    native = native_of(src)
    assert native is not None
    for module in native.COMPILED:
        path = Path(native.source_path(module))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    for path in src.rglob("*.py"):
        os.utime(path, (BUILT - 100, BUILT - 100))
    return src, native


def _build(native: ModuleType, *, leave_out: str = "") -> None:
    """What tools/build_native.py leaves behind, as far as rota.native looks: a file per
    module and one for their shared library, newer than the sources."""
    for module in (native.GROUP_MODULE, *native.COMPILED):
        if module == leave_out:
            continue
        path = Path(native.compiled_path(module))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        os.utime(path, (BUILT, BUILT))


@pytest.fixture(autouse=True)
def _no_pure_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite may run with ROTA_PURE_PYTHON=1 (make test's second pass); these tests set
    # it themselves where it matters.
    monkeypatch.delenv("ROTA_PURE_PYTHON", raising=False)


def test_a_current_build_or_none_at_all_can_be_measured(tmp_path: Path) -> None:
    src, native = _tree(tmp_path)
    assert build_problem(src) is None  # never built: pure Python is all this tree has
    _build(native)
    assert native.built()
    assert build_problem(src) is None
    require_current_build("bench.x", src)  # returns


def test_a_source_edited_after_the_build_is_refused_naming_it(tmp_path: Path) -> None:
    src, native = _tree(tmp_path)
    _build(native)
    os.utime(native.source_path("rota.http.rules"), (EDITED, EDITED))
    problem = build_problem(src)
    assert problem is not None
    assert "older than their source (rota.http.rules)" in problem
    assert "`make install`" in problem and "tools/build_native.py" in problem
    assert "ROTA_PURE_PYTHON=1" in problem
    with pytest.raises(SystemExit) as refused:
        require_current_build("bench.ab", src)
    assert str(refused.value.code).startswith("bench.ab: rota's compiled modules in ")


def test_a_build_missing_a_module_is_refused_naming_it(tmp_path: Path) -> None:
    src, native = _tree(tmp_path)
    _build(native, leave_out="rota.proxy.client")
    problem = build_problem(src)
    assert problem is not None and "incomplete (missing rota.proxy.client)" in problem


def test_a_build_older_than_the_module_list_names_a_few_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    src, native = _tree(tmp_path)
    _build(native)
    os.utime(src / "rota" / "native.py", (EDITED, EDITED))  # a module added to the list
    problem = build_problem(src)
    assert problem is not None
    assert f"and {len(native.COMPILED) - 6} more)" in problem
    assert native.COMPILED[0] in problem and native.COMPILED[-1] not in problem


def test_pure_python_chosen_on_purpose_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, native = _tree(tmp_path)
    _build(native, leave_out="rota.pool")
    monkeypatch.setenv("ROTA_PURE_PYTHON", "1")
    assert build_problem(src) is None
    monkeypatch.setenv("ROTA_PURE_PYTHON", "0")  # rota.native reads "0" as not set
    assert build_problem(src) is not None


def test_a_tree_without_compiled_modules_at_all_runs(tmp_path: Path) -> None:
    (tmp_path / "src" / "rota").mkdir(parents=True)  # rota from before rota.native
    assert build_problem(tmp_path / "src") is None


def test_bench_ab_refuses_a_stale_base_before_starting_anything(tmp_path: Path) -> None:
    base = tmp_path / "base"
    _, native = _tree(base)
    _build(native)
    os.utime(native.source_path("rota.pool"), (EDITED, EDITED))
    # Zero rounds: were the stale tree let through, ab would only start and stop its
    # backends and exit 0.
    args = ["-m", "bench.ab", "--base", str(base), "--rounds", "0", "--no-haproxy"]
    done = fresh_python(*args, pythonpath=f"{REPO / 'src'}:{REPO}", cwd=REPO)
    assert done.returncode != 0
    assert "bench.ab: rota's compiled modules in " in done.stderr
    assert "/base/src/rota/_compiled are older than their source (rota.pool)" in done.stderr
