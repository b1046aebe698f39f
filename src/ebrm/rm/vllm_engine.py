"""The vLLM engine: a base RM's backbone on vLLM's pooling runner, its head applied here.

vLLM serves sequence-classification RMs only approximately for our purpose (a
`*ForSequenceClassification` checkpoint does not load as an embedding model: its
`score.weight` is unexpected), so ebrm prepares what vLLM loads exactly:

1. `export_backbone`: the RM without its score head, saved as the architecture's causal-LM
   checkpoint (tied word embeddings, so no LM head is stored) with the tokenizer, under
   `<cache>/<hash of RM name, revision, weights hash, dtype>`, written atomically and
   recorded in provenance.
2. vLLM loads it with `runner="pooling", convert="embed"` and a LAST pooler with no
   activation/normalisation: the final hidden state at the last token it is sent.
3. Rows are sent unpadded and cut after their last non-pad token, so LAST is the token the
   RM pools (`ebrm.rm.pooling.last_non_pad_index`; with pad == EOS a trailing EOS is
   skipped, as the RM does). Attention is causal, so the cut changes no earlier state.
4. The RM's own score head (weight, bias) maps the pooled states to rewards in torch.

At load, a few probe rows go through both engines; rewards that differ refuse the engine
(`IncompatibleArtifactError`) rather than serve approximately.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ebrm.errors import ConfigError, IncompatibleArtifactError
from ebrm.rm.engine_config import EngineOptions
from ebrm.rm.hf import head_parameters, is_offloaded

# Sequence-classification classes we export, and the causal-LM class vLLM loads their
# backbone as. Each is tested for equality with the transformers path (tests/engines);
# others are refused, never served approximately.
CAUSAL_LM_OF = {
    "LlamaForSequenceClassification": "LlamaForCausalLM",
    "Qwen2ForSequenceClassification": "Qwen2ForCausalLM",
    "MistralForSequenceClassification": "MistralForCausalLM",
}
EXPORT_VERSION = 1  # bump when the export's layout changes (a new cache key)
_MARKER = "ebrm_export.json"
CPU_KV_CACHE_BYTES = 1 << 30  # vLLM's CPU default reserves ~all RAM; 1 GiB unless told


def export_key(rm: Any) -> str:
    """The cache key of `rm`'s backbone export: its name, revision, weights and dtype."""
    ident = {
        "name_or_path": rm.name_or_path,
        "revision": rm.revision,
        "weights_hash": rm.weights_hash,
        "dtype": str(rm.dtype).removeprefix("torch."),
        "export_version": EXPORT_VERSION,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


def check_exportable(rm: Any) -> str:
    """The causal-LM architecture `rm`'s backbone is exported as.

    Raises:
        IncompatibleArtifactError: an architecture we have not tested on vLLM.
        ConfigError: the RM is split across devices (`--device-map`).
    """
    arch = type(rm.model).__name__
    if arch not in CAUSAL_LM_OF or rm.head_name != "score":
        raise IncompatibleArtifactError(
            f"--engine vllm cannot serve {rm.name_or_path} ({arch}) exactly: ebrm exports "
            f"only {', '.join(sorted(CAUSAL_LM_OF))} to vLLM (tested equal to transformers). "
            "Use --engine transformers for this RM."
        )
    if getattr(rm.model, "hf_device_map", None) or is_offloaded(rm.head):
        raise ConfigError(
            "--engine vllm with --device-map: vLLM places the RM itself (tensor/data "
            "parallelism); drop --device-map/--max-memory/--offload-folder."
        )
    return CAUSAL_LM_OF[arch]


def export_backbone(rm: Any, cache_dir: str | os.PathLike) -> Path:
    """`rm` without its score head as a causal-LM checkpoint vLLM loads (cached).

    Returns:
        The export directory, `cache_dir/<export_key(rm)>` (reused when present).
    """
    from safetensors.torch import save_file

    causal_lm = check_exportable(rm)
    cache_dir = Path(cache_dir)
    target = cache_dir / export_key(rm)
    if (target / _MARKER).is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_dir))
    try:
        prefix = rm.model.base_model_prefix  # "model" for Llama/Qwen2/Mistral
        backbone = getattr(rm.model, prefix)
        state = {f"{prefix}.{k}": v.detach().cpu().contiguous()
                 for k, v in backbone.state_dict().items()}  # fmt: skip
        save_file(state, staging / "model.safetensors", metadata={"format": "pt"})
        config = rm.model.config.to_dict()
        for key in ("id2label", "label2id", "num_labels", "problem_type"):
            config.pop(key, None)
        # no LM head is stored: vLLM ties it to the input embeddings, and pooling never
        # reads it
        config.update(architectures=[causal_lm], tie_word_embeddings=True)
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        rm.tokenizer.save_pretrained(staging)
        record = {"source": {"name_or_path": rm.name_or_path, "revision": rm.revision,
                             "weights_hash": rm.weights_hash},
                  "architecture": causal_lm, "export_version": EXPORT_VERSION}  # fmt: skip
        (staging / _MARKER).write_text(json.dumps(record, indent=2, sort_keys=True))
        try:
            os.replace(staging, target)
        except OSError:  # another process exported it first (a non-empty target)
            if not (target / _MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def pooled_prefix(row: Sequence[int], pad_token_id: int | None) -> list[int]:
    """`row` up to and including the token the RM pools (its last non-pad token; the
    first token when every token is pad, as `last_non_pad_index` gives)."""
    row = list(row)
    if pad_token_id is None:
        return row
    end = len(row)
    while end > 1 and row[end - 1] == pad_token_id:
        end -= 1
    return row[:end]


def _pooler_config() -> dict[str, Any]:
    """LAST pooling, no activation/normalisation, in the installed vLLM's option names
    (`normalize` became `use_activation`)."""
    import dataclasses

    from vllm.config import PoolerConfig

    fields = {f.name for f in dataclasses.fields(PoolerConfig)}
    off = "use_activation" if "use_activation" in fields else "normalize"
    return {"pooling_type": "LAST", off: False}


class VLLMEngine:
    """A `RewardEngine` on vLLM for the `BaseRewardModel` `rm` (see the module docstring)."""

    name = "vllm"

    def __init__(self, rm: Any, options: EngineOptions) -> None:
        self.path = export_backbone(rm, options.resolved_cache_dir)
        self.pad_token_id = rm.pad_token_id
        self.dtype = rm.dtype
        weight, bias = head_parameters(rm.head)  # float32 cpu copies
        self.weight, self.bias = (
            weight.to(self.dtype),
            None if bias is None else bias.to(self.dtype),
        )
        self.llm = self._load(rm, options)
        # vLLM's CPU attention checks that a step runs with the thread count it was built
        # with; OpenMP's count is per thread, so a server's worker thread must set it too
        self._threads = torch.get_num_threads()
        self._check_equal(rm)

    def _load(self, rm: Any, options: EngineOptions):
        import vllm
        from vllm.platforms import current_platform

        if options.tensor_parallel_size * options.data_parallel_size == 1:
            # one process: vLLM's engine-core subprocess is spawned, which needs an
            # `if __name__ == "__main__":` guard in every script that scores
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        kwargs: dict[str, Any] = {}
        if options.gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = options.gpu_memory_utilization
        if options.max_num_seqs is not None:
            kwargs["max_num_seqs"] = options.max_num_seqs
        kv_bytes = options.kv_cache_memory_bytes
        if kv_bytes is None and current_platform.is_cpu():
            kv_bytes = None if os.environ.get("VLLM_CPU_KVCACHE_SPACE") else CPU_KV_CACHE_BYTES
        if kv_bytes is not None:
            kwargs["kv_cache_memory_bytes"] = kv_bytes
        self.version = vllm.__version__
        return vllm.LLM(
            model=str(self.path),
            tokenizer=str(self.path),
            runner="pooling",
            convert="embed",
            pooler_config=_pooler_config(),
            dtype=str(self.dtype).removeprefix("torch."),
            max_model_len=int(rm.max_length),
            enable_prefix_caching=options.enable_prefix_caching,
            tensor_parallel_size=options.tensor_parallel_size,
            data_parallel_size=options.data_parallel_size,
            enforce_eager=options.enforce_eager,
            seed=0,
            **kwargs,
        )

    def embed_token_ids(
        self, ids: Sequence[Sequence[int]], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings (N, D) float32 cpu, rewards (N,) float32 cpu) in input order; all
        rows go to vLLM at once (it batches them itself; `batch_size` is not used)."""
        from vllm.inputs import TokensPrompt

        rows = [pooled_prefix(row, self.pad_token_id) for row in ids]
        if not rows:
            return torch.empty((0, self.weight.shape[1])), torch.empty((0,))
        threads = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        try:
            outputs = self.llm.embed(
                [TokensPrompt(prompt_token_ids=row) for row in rows], use_tqdm=progress
            )
        finally:
            torch.set_num_threads(threads)
        for i, out in enumerate(outputs):
            if getattr(out, "error", None) is not None:
                raise RuntimeError(f"vLLM failed on row {i}: {out.error}")
        pooled = torch.tensor([out.outputs.embedding for out in outputs])  # (N, D) float64
        pooled = pooled.to(self.dtype)  # the values the RM's head reads, in its dtype
        rewards = nn.functional.linear(pooled, self.weight, self.bias)[:, 0]  # (N,)
        return pooled.float(), rewards.float()

    def provenance(self) -> dict[str, Any]:
        return {"engine": self.name, "engine_version": self.version,
                "engine_backbone": str(self.path)}  # fmt: skip

    def _check_equal(self, rm: Any) -> None:
        """Probe rows (one ending in pad tokens) give the RM's own rewards, or refuse."""
        rows = rm.tokenize(["ebrm engine check: is the reward the same?", "ok"])
        if self.pad_token_id is not None:
            rows.append([*rows[0], self.pad_token_id, self.pad_token_id])
        rows = [row[: rm.max_length] for row in rows]
        previous, rm.engine = rm.engine, None
        try:
            _, expected = rm.embed_token_ids(rows)  # the RM's own transformers forward
        finally:
            rm.engine = previous
        _, got = self.embed_token_ids(rows)
        tol = 1e-4 if self.dtype == torch.float32 else 5e-2
        scale = 1.0 + float(expected.abs().max())
        if not torch.allclose(got, expected, rtol=tol, atol=tol * scale):
            raise IncompatibleArtifactError(
                f"vLLM {self.version} does not reproduce {rm.name_or_path}'s rewards "
                f"(transformers {expected.tolist()} vs vLLM {got.tolist()}); refusing to serve "
                "it approximately. Use --engine transformers for this RM, and please report it."
            )
