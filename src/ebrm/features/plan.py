"""The extraction plan: the unique formatted texts of a data set, in row order, and which
rows form each pair. It is fixed (and hashed) before any row is embedded."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ebrm.data.split import prompt_hash
from ebrm.data.types import Conversation, PreferencePair
from ebrm.errors import ConfigError


class EmbeddingModel(Protocol):
    """What extraction needs from a base RM (`ebrm.rm.BaseRewardModel` provides it)."""

    hidden_size: int

    def format(self, conv: Conversation) -> str: ...

    def embed_texts(
        self, texts: list[str], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def provenance(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ExtractionPlan:
    """The rows to extract and which rows form each pair; fixed before extraction starts."""

    texts: list[str]  # unique formatted texts, in row order (longest first)
    chosen: torch.Tensor  # (P,) int64 row of each pair's chosen response
    rejected: torch.Tensor  # (P,) int64 row of each pair's rejected response
    ids: list[str]  # per pair, its id in the source data
    subsets: list[str | None]  # per pair, its subset/domain when known
    prompt_hashes: list[str] | None  # per pair, `ebrm.data.prompt_hash` (not in plan_hash)
    plan_hash: str  # sha256 of the texts (in order) and the pair table
    keys: torch.Tensor  # (N, 32) uint8, `text_key` of each row: how later runs find it

    @property
    def num_rows(self) -> int:
        return len(self.texts)


def text_key(text: str) -> bytes:
    """The key a row is stored and found by: sha256 of its formatted text (32 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def text_keys(texts: Sequence[str]) -> torch.Tensor:
    """(N, 32) uint8: `text_key` of each text."""
    data = b"".join(text_key(t) for t in texts)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(len(texts), 32)


def plan_rows(
    chosen_texts: Sequence[str],
    rejected_texts: Sequence[str],
    *,
    ids: Sequence[str] | None = None,
    subsets: Sequence[str | None] | None = None,
    prompt_hashes: Sequence[str] | None = None,
) -> ExtractionPlan:
    """Deduplicate the formatted texts of P pairs into rows.

    Rows are ordered longest text first (ties in order of first appearance): consecutive rows
    then have similar lengths, so batches need little padding, and an out-of-memory error
    shows up in the first minute of a long run rather than at the end.
    """
    if len(chosen_texts) != len(rejected_texts):
        raise ValueError("chosen_texts and rejected_texts must have the same length")
    first_seen: dict[str, int] = {}
    for text in (t for pair in zip(chosen_texts, rejected_texts, strict=True) for t in pair):
        first_seen.setdefault(text, len(first_seen))
    texts = sorted(first_seen, key=lambda t: (-len(t), first_seen[t]))
    row = {text: i for i, text in enumerate(texts)}
    chosen = torch.tensor([row[t] for t in chosen_texts], dtype=torch.int64)
    rejected = torch.tensor([row[t] for t in rejected_texts], dtype=torch.int64)
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little") + encoded)
    digest.update(chosen.numpy().tobytes() + rejected.numpy().tobytes())
    n = len(chosen_texts)
    return ExtractionPlan(
        texts=texts,
        chosen=chosen,
        rejected=rejected,
        ids=list(ids) if ids is not None else [str(i) for i in range(n)],
        subsets=list(subsets) if subsets is not None else [None] * n,
        prompt_hashes=list(prompt_hashes) if prompt_hashes is not None else None,
        plan_hash=digest.hexdigest(),
        keys=text_keys(texts),
    )


def build_plan(rm: EmbeddingModel, pairs: Sequence[PreferencePair]) -> ExtractionPlan:
    """Format every response with the RM's template and deduplicate (see `plan_rows`)."""
    if not pairs:
        raise ConfigError("No preference pairs to extract; check --data (it yielded 0 pairs).")
    return plan_rows(
        [rm.format(pair.chosen) for pair in pairs],
        [rm.format(pair.rejected) for pair in pairs],
        ids=[pair.id or str(i) for i, pair in enumerate(pairs)],
        subsets=[pair.subset for pair in pairs],
        prompt_hashes=[prompt_hash(pair) for pair in pairs],
    )
