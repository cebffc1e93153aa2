"""deploy/Containerfile builds an image that can run rota: each stage installs every runtime
dependency pyproject.toml declares. The image runs `rota lb`, whose config loader imports
`cryptography` (certificate checks, rota.tls.certs) and whose admin listener imports
`prometheus_client`; an image without them stops at start-up with an ImportError, and a
build stage without them cannot type-check the compiled modules' imports for mypyc.

No container runtime is needed: the test reads the file the way the build runs it, one
`RUN` per line after joining continuations, stage by stage."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    """`"uvloop>=0.19; sys_platform != 'win32'"` -> `uvloop` (PEP 503 normalised)."""
    bare = re.split(r"[<>=!~;\[ ]", requirement.strip().strip("\"'"), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def runtime_dependencies() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {_name(r) for r in project["dependencies"]}


def stages() -> list[list[str]]:
    """The Containerfile's instructions, continuations joined, grouped by `FROM`."""
    text = (REPO / "deploy" / "Containerfile").read_text()
    lines = [line for line in text.replace("\\\n", " ").splitlines() if not line.startswith("#")]
    out: list[list[str]] = []
    for line in lines:
        if line.startswith("FROM "):
            out.append([])
        if out and line.strip():
            out[-1].append(line.strip())
    return out


def pip_installed(stage: list[str]) -> set[str]:
    names: set[str] = set()
    for instruction in stage:
        if not instruction.startswith("RUN "):
            continue
        for command in instruction[4:].split("&&"):
            words = command.split()
            if words[:2] != ["pip", "install"]:
                continue
            names.update(_name(w) for w in words[2:] if not w.startswith("-"))
    return names


def test_the_containerfile_has_a_build_and_a_final_stage() -> None:
    assert len(stages()) == 2


def test_every_stage_installs_every_runtime_dependency() -> None:
    wanted = runtime_dependencies()
    assert {"httptools", "cryptography", "prometheus-client"} <= wanted
    for i, stage in enumerate(stages()):
        missing = wanted - pip_installed(stage)
        assert not missing, f"stage {i} of deploy/Containerfile does not install {missing}"


def test_the_final_stage_runs_rota_lb_with_the_documented_paths() -> None:
    final = stages()[-1]
    assert 'ENTRYPOINT ["python", "-m", "rota"]' in final
    assert 'CMD ["lb", "--config", "/etc/rota/rota.toml", "--pid-file", "/run/rota/rota.pid"]' in (
        final
    )
