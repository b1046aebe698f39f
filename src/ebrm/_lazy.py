"""Package attributes imported on first use (PEP 562), so that importing a package is cheap.

The CLI reads names and defaults from ebrm's packages before any heavy import: a package
`__init__` lists what it exports and where it lives, and imports that module only when the
name is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package` that imports `exports[name]` on first use.

    Args:
        package: the package's `__name__` (for the error message).
        exports: exported name -> the module (absolute name) that defines it.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
