"""`--engine`: refused at once when its package is missing, then set on the base RM."""

from __future__ import annotations

from typing import Any


def check(engine: str) -> None:
    """Before any heavy import: the engine's package is installed (else one line saying
    how to install it)."""
    from ebrm.rm.engine_config import require_engine

    require_engine(engine)


def device_for(engine: str, device: str | None) -> str | None:
    """The device of the in-process transformers copy of the RM: with an inference engine it
    only tokenizes, exports the backbone and checks the engine, so it stays on the CPU (and
    off the engine's GPU memory) unless --device says otherwise."""
    return "cpu" if engine != "transformers" and device is None else device


def apply(rm: Any, engine: str, **options: Any) -> Any:
    """Make `rm` (a base RM, or one reusing a feature store) embed on `engine`; returns it.
    `options`: further `EngineOptions` fields (e.g. serve's parallelism)."""
    if engine == "transformers" and not options:
        return rm
    from ebrm.rm.engine import use_engine
    from ebrm.rm.engine_config import EngineOptions

    return use_engine(rm, EngineOptions(engine=engine, **options))
