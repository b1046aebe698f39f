"""Candidate pools of real responses.

A pool gives every selected prompt K candidate responses: its own chosen and rejected
responses plus K - 2 responses drawn (seeded, without replacement, distinct texts) from
other pairs. Every candidate is scored in the prompt's own context.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

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
