"""The candidate responses of the large pools, and the response-level preference pairs.

Every real response the data has (both sides of every pair, RM-Bench's three chosen and
three rejected styles) becomes a candidate once; a seeded subset of them is also rewritten
by every deterministic edit (`edits.py`). The reward models read a response alone (the
prompt is dropped: embedding each of K >= 1000 candidates in each prompt's context would
cost P x K encoder passes, far beyond a CPU budget), so one embedding per unique text
serves every pool, every reward model and the training pairs.

Each pool prompt (a held-out pair) gets K candidates: its own responses and their edits
first, then others drawn without replacement (seeded) from the whole set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError


@dataclass(frozen=True)
class CandidateSet:
    """N unique candidate texts: real responses, then their edited versions."""

    texts: tuple[str, ...]  # (N,) response texts, each once
    kinds: tuple[str, ...]  # (N,) "real" or the edit's name
    origin: tuple[int, ...]  # (N,) index of the real response it comes from (itself if real)

    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.texts)}

    def edits_of(self) -> dict[int, list[int]]:
        """Real response index -> the indices of its edited versions."""
        out: dict[int, list[int]] = {}
        for i, (kind, o) in enumerate(zip(self.kinds, self.origin, strict=True)):
            if kind != "real":
                out.setdefault(o, []).append(i)
        return out


def build_candidates(
    responses: Sequence[str],
    edit: Sequence[int],
    edits: Mapping[str, Callable[[str], str]],
) -> CandidateSet:
    """Real `responses` (deduplicated, in order) plus every edit of those at `edit`.

    Args:
        responses: real response texts (duplicates are kept once).
        edit: positions in `responses` whose edited versions are added.
        edits: name -> deterministic rewrite.
    """
    texts: list[str] = []
    kinds: list[str] = []
    origin: list[int] = []
    seen: dict[str, int] = {}
    for text in responses:
        if text not in seen:
            seen[text] = len(texts)
            texts.append(text)
            kinds.append("real")
            origin.append(seen[text])
    for position in edit:
        source = seen[responses[position]]
        for name, rewrite in edits.items():
            new = rewrite(texts[source])
            if new not in seen:
                seen[new] = len(texts)
                texts.append(new)
                kinds.append(name)
                origin.append(source)
    return CandidateSet(tuple(texts), tuple(kinds), tuple(origin))


def response_pairs(
    candidates: CandidateSet, pairs: Sequence[PreferencePair]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen (P,), rejected (P,)) candidate indices of the pairs' responses."""
    index = candidates.index()
    try:
        chosen = [index[p.chosen.response] for p in pairs]
        rejected = [index[p.rejected.response] for p in pairs]
    except KeyError as exc:
        raise ValueError(f"a pair's response is not a candidate: {exc}") from None
    return torch.tensor(chosen, dtype=torch.long), torch.tensor(rejected, dtype=torch.long)


def build_pools(
    candidates: CandidateSet,
    own: Sequence[Sequence[int]],
    *,
    num_candidates: int,
    seed: int,
) -> torch.Tensor:
    """(P, K) candidate indices: each prompt's own responses and their edits, then others.

    Args:
        own: per prompt, the indices of its real responses.
        num_candidates: K.
        seed: seeds the draw of the other candidates.

    Raises:
        ConfigError: K is larger than the candidate set or smaller than a prompt's own.
    """
    n = len(candidates.texts)
    if num_candidates > n:
        raise ConfigError(
            f"--candidates {num_candidates} is more than the {n} candidate texts; lower it "
            "or add data (--data) or edited responses (--edited)."
        )
    edits = candidates.edits_of()
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for mine in own:
        first = list(dict.fromkeys([*mine, *(e for i in mine for e in edits.get(i, []))]))
        if len(first) > num_candidates:
            raise ConfigError(f"--candidates must be >= {len(first)} (a prompt's own).")
        taken = torch.zeros(n, dtype=torch.bool)
        taken[first] = True
        order = torch.randperm(n, generator=generator)
        others = order[~taken[order]][: num_candidates - len(first)]
        rows.append(torch.cat([torch.tensor(first, dtype=torch.long), others]))
    return torch.stack(rows)
