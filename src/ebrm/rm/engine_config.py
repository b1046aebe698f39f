"""`EngineOptions`, how a base RM's forward engine is built (`ebrm.rm.engine`), without torch.

Kept apart from the engines so that the CLI fills it (and refuses a missing vLLM with one
line) before torch loads. `ebrm serve`'s parallelism flags fill the same object.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ebrm._config import check_bool, check_choice, check_float, check_int, from_dict, to_dict
from ebrm.errors import ConfigError
from ebrm.rm.names import DEFAULT_ENGINE, ENGINES, VLLM_INSTALL_HINT

CACHE_ENV = "EBRM_ENGINE_CACHE"  # where backbone exports go (default ~/.cache/ebrm/engines)


@dataclass(frozen=True)
class EngineOptions:
    """Options of the engine that runs the base RM's forward."""

    engine: str = DEFAULT_ENGINE  # "transformers" (default) or "vllm" (`ebrm.rm.names.ENGINES`)
    tensor_parallel_size: int = 1  # vLLM: GPUs one replica's layers are split across
    data_parallel_size: int = 1  # vLLM: replicas of the model inside one engine
    enable_prefix_caching: bool = True  # vLLM: share the forward of a common prompt prefix
    gpu_memory_utilization: float | None = None  # vLLM: share of GPU memory; None: vLLM's
    max_num_seqs: int | None = None  # vLLM: most sequences per engine step; None: vLLM's
    kv_cache_memory_bytes: int | None = None  # vLLM: KV cache size; None: vLLM's (1 GiB on CPU)
    enforce_eager: bool = False  # vLLM: no graph capture/compilation (faster start, tests)
    cache_dir: str | None = None  # backbone exports; None: $EBRM_ENGINE_CACHE or ~/.cache/ebrm

    def __post_init__(self) -> None:
        check_choice(self, "engine", ENGINES)
        check_int(self, "tensor_parallel_size", low=1)
        check_int(self, "data_parallel_size", low=1)
        check_bool(self, "enable_prefix_caching")
        check_float(self, "gpu_memory_utilization", low=0.0, high=1.0, low_open=True,
                    optional=True)  # fmt: skip
        check_int(self, "max_num_seqs", low=1, optional=True)
        check_int(self, "kv_cache_memory_bytes", low=1, optional=True)
        check_bool(self, "enforce_eager")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EngineOptions:
        """Inverse of `to_dict`; unknown keys are dropped with one warning naming them."""
        return from_dict(cls, data)

    @property
    def resolved_cache_dir(self) -> Path:
        """Where backbone exports are kept."""
        if self.cache_dir is not None:
            return Path(self.cache_dir).expanduser()
        if os.environ.get(CACHE_ENV):
            return Path(os.environ[CACHE_ENV]).expanduser()
        return Path("~/.cache/ebrm/engines").expanduser()


def require_engine(engine: str) -> None:
    """Refuse an engine whose package is not installed, naming how to install it, without
    importing it (the CLI calls this before torch loads).

    Raises:
        ConfigError: `engine` is "vllm" and the `vllm` package cannot be imported.
    """
    if engine == "vllm" and importlib.util.find_spec("vllm") is None:
        raise ConfigError(f"--engine vllm needs the vLLM package, which is not installed: "
                          f"{VLLM_INSTALL_HINT}.")  # fmt: skip
