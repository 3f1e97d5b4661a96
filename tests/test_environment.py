"""environment.yml pins exactly what pyproject.toml asks for."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# extras that are no part of the environment: the inference benchmark's anchors (TFLite, LCE),
# installed by hand where wanted (benchmarks/README.md)
OPTIONAL_ONLY = {"anchors"}


def normalise(requirement: str) -> str:
    return requirement.replace(" ", "").lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {normalise(r) for r in project["dependencies"]}
    for name, extra in project["optional-dependencies"].items():
        if name in OPTIONAL_ONLY:
            continue
        wanted |= {normalise(r) for r in extra}
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    listed = {normalise(r) for r in pip_section if not r.startswith("-e")}
    assert listed == wanted
    assert "python=3.11" in environment["dependencies"]
