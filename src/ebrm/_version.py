"""Package version and the library versions recorded in every artifact."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


__version__ = _version("ebrm")


def version_info() -> dict[str, str]:
    """Versions of ebrm and the libraries its artifacts depend on."""
    return {name: _version(name) for name in ("ebrm", "torch", "transformers", "safetensors")}
