"""Engines: what runs a base RM's forward, "token rows -> (embedding the score head reads,
reward)".

A `BaseRewardModel` tokenizes (chat template, truncation, BOS) and then hands its rows to
its engine:

* `TransformersEngine` (the default): the RM's own `transformers` model, padded batches,
  the head input captured at the pooled token (`BaseRewardModel._forward_batch`).
* `VLLMEngine` (`ebrm.rm.vllm_engine`, `--engine vllm`): the RM's backbone on vLLM's
  pooling runner (continuous batching without padding, prefix caching, tensor/data
  parallelism), pooled at the token the RM pools, with the RM's score head applied here.

Both return the same (N, D) embeddings and (N,) rewards (float32, cpu, input order);
`tests/engines` checks that within 1e-4 in float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ebrm.rm.engine_config import EngineOptions, require_engine

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch


class RewardEngine(Protocol):
    """Runs a base RM's forward on token rows."""

    name: str  # one of `ebrm.rm.names.ENGINES`

    def embed_token_ids(
        self, ids: Sequence[Sequence[int]], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings (N, D) float32 cpu, rewards (N,) float32 cpu), in input order."""
        ...

    def provenance(self) -> dict[str, Any]:
        """What to record beside the RM's provenance (the engine's name, version, files)."""
        ...


class TransformersEngine:
    """The RM's own `transformers` forward: what `BaseRewardModel` does without an engine."""

    name = "transformers"

    def __init__(self, rm: Any) -> None:
        self.rm = rm

    def embed_token_ids(
        self, ids: Sequence[Sequence[int]], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rm.embed_token_ids(ids, batch_size=batch_size, progress=progress)

    def provenance(self) -> dict[str, Any]:
        return {"engine": self.name}


def build_engine(rm: Any, options: EngineOptions | None = None) -> RewardEngine:
    """The engine `options.engine` names, for the `BaseRewardModel` `rm`.

    Raises:
        ConfigError: vLLM is asked for and not installed (one line: how to install it).
        IncompatibleArtifactError: vLLM cannot serve this RM exactly (its architecture is
            not one we test, or its rewards differ from the transformers path).
    """
    options = options or EngineOptions()
    if options.engine == "transformers":
        return TransformersEngine(rm)
    require_engine(options.engine)
    from ebrm.rm.vllm_engine import VLLMEngine  # vLLM is imported only when chosen

    return VLLMEngine(rm, options)


def use_engine(rm: Any, options: EngineOptions | None = None) -> Any:
    """Make `rm` (a `BaseRewardModel`, or a wrapper holding one as `.rm`, e.g. the
    feature-reusing one) embed on the engine `options` names; returns `rm`."""
    target = getattr(rm, "rm", rm)
    engine = build_engine(target, options)
    target.use_engine(None if isinstance(engine, TransformersEngine) else engine)
    return rm
