"""Installing: no setuptools warning, and `make demo` installs only what the demo needs
(issue 25, item 8)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def test_the_licence_is_an_spdx_string_that_setuptools_reads_without_a_warning():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert pyproject["project"]["license"] == "Apache-2.0"
    for name in pyproject["project"]["license-files"]:
        assert (ROOT / name).is_file(), name
    # PEP 639 strings need setuptools >= 77 (an older one rejects them)
    assert any(r.startswith("setuptools>=7") and int(r.split(">=")[1][:2]) >= 77
               for r in pyproject["build-system"]["requires"])  # fmt: skip

    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} predates PEP 639")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert [str(w.message) for w in caught] == []  # what pip install -e . prints as warnings
    assert dist.metadata.license_expression == "Apache-2.0"


def _make(target: str) -> str:
    """The commands `make TARGET` would run from scratch (dry run: nothing is executed)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    done = subprocess.run([make, "-n", "-B", target], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    return done.stdout


def test_make_demo_installs_the_package_without_the_dev_extras():
    demo = _make("demo")
    assert "pip install -q -e '.[server]'" in demo and "[dev]" not in demo
    assert "ebrm demo" in demo


def test_make_test_installs_the_dev_extras():
    assert "pip install -q -e '.[dev]'" in _make("test")
