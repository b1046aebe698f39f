"""Candidate pools of real responses, and embeddings cached per encoder.

A pool gives every selected prompt K candidate responses: its own chosen and rejected
responses plus K - 2 responses drawn (seeded, without replacement, distinct texts) from
other pairs. Every candidate is scored in the prompt's own context.

Embeddings are cached under a key made of the *encoder* weights (every parameter except the
RM's score head), the tokenisation settings and the texts. Reward models that share a frozen
encoder (the usual frozen-encoder BT recipe) therefore share one extraction pass; each RM's
reward is then its own head applied to the cached embeddings (`rm.head_reward`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ebrm._io import atomic_write
from ebrm.data.types import Conversation, PreferencePair
from ebrm.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CandidatePool:
    """P prompts x K candidates, stored row-major (candidate k of prompt p at p * K + k)."""

    conversations: tuple[Conversation, ...]  # (P * K) prompt + candidate response
    sources: tuple[str, ...]  # (P * K) "chosen" | "rejected" (the prompt's own) | "other"
    prompt_ids: tuple[str, ...]  # (P) id of the pair each prompt comes from
    num_candidates: int  # K

    @property
    def num_prompts(self) -> int:
        return len(self.prompt_ids)

    def to_dict(self) -> dict:
        """A JSON-able record of the pool (texts included, for inspection)."""
        k = self.num_candidates
        return {
            "num_prompts": self.num_prompts,
            "num_candidates": k,
            "prompts": [
                {
                    "pair_id": pid,
                    "prompt": self.conversations[p * k].prompt_text,
                    "sources": list(self.sources[p * k : (p + 1) * k]),
                    "responses": [c.response for c in self.conversations[p * k : (p + 1) * k]],
                }
                for p, pid in enumerate(self.prompt_ids)
            ],
        }


def build_pool(
    pairs: Sequence[PreferencePair],
    prompt_indices: Sequence[int],
    *,
    num_candidates: int,
    seed: int = 0,
) -> CandidatePool:
    """Candidates for each pair in `prompt_indices`: own chosen, own rejected, then others.

    Args:
        pairs: all pairs; responses of every pair may be drawn as "other" candidates.
        prompt_indices: which pairs provide the prompts (in this order).
        num_candidates: K >= 2 candidates per prompt.
        seed: seeds the draw of other responses.

    Raises:
        ConfigError: K < 2, or too few distinct responses to fill K candidates.
    """
    if num_candidates < 2:
        raise ConfigError(
            f"num_candidates must be >= 2 (the prompt's own chosen and rejected); "
            f"got {num_candidates}."
        )
    responses: list[str] = []
    owner: list[int] = []
    seen: set[str] = set()
    for i, pair in enumerate(pairs):
        for text in (pair.chosen.response, pair.rejected.response):
            if text not in seen:
                seen.add(text)
                responses.append(text)
                owner.append(i)
    generator = torch.Generator().manual_seed(seed)
    convs: list[Conversation] = []
    sources: list[str] = []
    for index in prompt_indices:
        pair = pairs[index]
        prompt = pair.chosen.messages
        own = [pair.chosen.response, pair.rejected.response]
        need = num_candidates - 2
        picked: list[str] = []
        for j in torch.randperm(len(responses), generator=generator).tolist():
            if len(picked) == need:
                break
            if owner[j] != index and responses[j] not in own:
                picked.append(responses[j])
        if len(picked) < need:
            raise ConfigError(
                f"Only {len(picked) + 2} distinct responses are available for a pool of "
                f"{num_candidates} candidates per prompt; use fewer --candidates or more data."
            )
        for text, source in zip(
            own + picked, ["chosen", "rejected"] + ["other"] * need, strict=True
        ):
            convs.append(Conversation(messages=prompt, response=text))
            sources.append(source)
    return CandidatePool(
        conversations=tuple(convs),
        sources=tuple(sources),
        prompt_ids=tuple(pairs[i].id or str(i) for i in prompt_indices),
        num_candidates=num_candidates,
    )


def encoder_hash(rm) -> str:
    """sha256 of every parameter/buffer except the score head, plus tokenisation settings."""
    digest = hashlib.sha256()
    head_prefix = rm.head_name + "."
    for name, tensor in sorted(rm.model.state_dict().items()):
        if name.startswith(head_prefix):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    settings = {
        "class": type(rm.model).__name__,
        "max_length": rm.max_length,
        "truncation_side": rm.truncation_side,
        "dtype": str(rm.dtype),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def _texts_hash(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def cached_embeddings(
    rm,
    texts: Sequence[str],
    cache_dir: str | Path,
    *,
    batch_size: int = 16,
    progress: bool = True,
    encoder_key: str | None = None,
) -> torch.Tensor:
    """(N, D) embeddings of `texts` under `rm`, read from or written to `cache_dir`.

    Args:
        rm: a `BaseRewardModel`.
        texts: formatted texts (`rm.format(conv)`).
        cache_dir: directory of `emb-<key>.safetensors` files.
        encoder_key: `encoder_hash(rm)` if already known.
    """
    from safetensors.torch import load_file, save_file

    key = hashlib.sha256(
        ((encoder_key or encoder_hash(rm)) + _texts_hash(texts)).encode()
    ).hexdigest()[:24]
    path = Path(cache_dir) / f"emb-{key}.safetensors"
    if path.exists():
        emb = load_file(str(path))["embeddings"]
        if emb.shape == (len(texts), rm.hidden_size):
            logger.info("reusing %d cached embeddings from %s", len(texts), path)
            return emb
    emb, _ = rm.embed_texts(list(texts), batch_size=batch_size, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file({"embeddings": emb.contiguous()}, str(tmp)))
    return emb
