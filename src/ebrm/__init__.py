"""ebrm: energy-based refinement of frozen reward models (EBRM, arXiv 2504.13134)."""

from ebrm._version import __version__

__all__ = ["__version__"]
