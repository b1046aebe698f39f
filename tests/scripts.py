"""The repository's scripts outside the package (benchmarks/, experiments/, examples/),
loaded as modules by their path for the tests that call their functions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(path: Path, name: str, *, register: bool = False) -> ModuleType:
    """The script at `path` (relative to the repository root, or absolute) as module `name`;
    `register` puts it in `sys.modules` first (a dataclass in it looks its module up there)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
