"""The pipeline's one-way layering (`[tool.importlinter]` in pyproject.toml) holds.

`make test` runs `lint-imports` before pytest; this test runs the same contract so that
`pytest` alone also catches an import from a later stage. Skipped without import-linter.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = (
    "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
)


@pytest.mark.skipif(
    importlib.util.find_spec("importlinter") is None,
    reason="import-linter is not installed (pip install -e '.[dev]')",
)
def test_the_layers_contract_holds():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # the tree under test
    result = subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
