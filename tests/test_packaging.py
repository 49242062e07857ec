import re

import yaml

from conftest import ROOT


def _pins(lines):
    return {m.group(1).lower(): m.group(2) for line in lines
            if (m := re.match(r"\s*-?\s*([A-Za-z0-9_.-]+)==([^\s#]+)", line))}


def test_conda_env_pins_match_requirements():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines()
                + (ROOT / "requirements-formats.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "envs" / "pipeline.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = _pins(pip)
    assert conda, "no pins in envs/pipeline.yaml"
    for name, version in conda.items():
        assert req.get(name) == version, f"{name}: env {version} vs requirements {req.get(name)}"
    # every runtime dependency of the rules is in the conda env
    for name in ("numpy", "scipy", "scikit-image", "tifffile", "pandas", "matplotlib"):
        assert name in conda


def test_formats_extra_pins_agree_everywhere():
    import tomllib

    req = _pins((ROOT / "requirements-formats.txt").read_text().splitlines())
    extra = _pins(tomllib.loads((ROOT / "pyproject.toml").read_text())
                  ["project"]["optional-dependencies"]["formats"])
    env = yaml.safe_load((ROOT / "envs" / "pipeline.yaml").read_text())
    conda = _pins(next(d["pip"] for d in env["dependencies"] if isinstance(d, dict)))
    assert set(req) == {"nd2", "readlif", "pylibczirw", "zarr"}
    assert extra == req
    assert {k: conda.get(k) for k in req} == req
