"""Gold and proxy rewards of every candidate, one regime per proxy label-noise level.

As in Gao et al. (2023) and Coste et al. (2024): **gold** is the strongest RM the budget
allows, a Bradley-Terry head on the frozen encoder trained on *all* pairs with their clean
labels, larger than the proxies (default a one-hidden-layer tanh MLP of 64 units: on the
shared data 0.82 train accuracy against the linear head's 0.69, and nonlinear, so it can
disagree with a linear proxy far from the data); each regime's **proxy** is a linear BT
head trained on a share of the pairs (none of the pool's prompts) with `label_noise` of
its labels flipped (seeded). Proxy families (`proxies.py`) add rewards derived from the
proxy and its training pairs (EBRM refined and conservative, references).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ebrm.data.split import prompt_hash, split_indices
from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError
from ebrm.features import PairFeatures
from ebrm.overopt.proxies import ProxyFamily
from ebrm.overopt.scorers import LinearScorer, Scorer, score_all
from ebrm.rm.bt_head import fit_bt_head
from ebrm.rm.label_noise import flip_indices


@dataclass(frozen=True)
class PromptSplit:
    """Which pairs give the pool's prompts and which the proxies may train on."""

    pool_groups: list[list[int]]  # per pool prompt, the indices of its pairs
    proxy_pairs: list[int]  # pairs the proxies train on (no pool prompt among them)


def split_prompts(
    pairs: Sequence[PreferencePair], *, num_prompts: int, proxy_fraction: float, seed: int
) -> PromptSplit:
    """Seeded: `num_prompts` prompt groups for the pools, a share of the rest for proxies.

    Both draws are `ebrm.data.split_indices` ordered by one seeded `torch.randperm`
    generator: first the distinct prompts (`prompt_hash`), `num_prompts` of them for the
    pools, then the rest's pairs one by one, `proxy_fraction` of them for the proxies.
    """
    keys = [prompt_hash(pair) for pair in pairs]
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    prompts = list(groups)
    if num_prompts >= len(prompts):
        raise ConfigError(
            f"--prompts {num_prompts} leaves no prompt to train the proxies on ({len(prompts)} "
            "distinct prompts in --data); lower --prompts."
        )
    generator = torch.Generator().manual_seed(seed)
    permutation = lambda n: torch.randperm(n, generator=generator).tolist()  # noqa: E731
    pool, others = split_indices(prompts, [num_prompts / len(prompts)], seed=permutation)
    rest = [i for g in others for i in groups[prompts[g]]]
    take, _ = split_indices(range(len(rest)), [proxy_fraction], seed=permutation)
    return PromptSplit([groups[prompts[g]] for g in pool], sorted(rest[i] for i in take))


def flip(chosen: torch.Tensor, rejected: torch.Tensor, fraction: float, *, seed: int):
    """(chosen, rejected) with exactly round(fraction * M) seeded pairs swapped: the pairs
    `ebrm base-rm train --label-noise` flips (`ebrm.rm.label_noise.flip_indices`)."""
    flipped = torch.tensor(flip_indices(chosen.shape[0], fraction, seed=seed), dtype=torch.long)
    c, r = chosen.clone(), rejected.clone()
    c[flipped], r[flipped] = rejected[flipped], chosen[flipped]
    return c, r


def accuracy(reward: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    """Pairwise accuracy (`ebrm.evaluation.metrics.pairwise_correct`: ties count as wrong)."""
    from ebrm.evaluation.metrics import pairwise_correct

    return float(pairwise_correct(reward[chosen], reward[rejected]).mean())


@dataclass(frozen=True)
class HeadSettings:
    """How every BT head of the harness is fitted (`ebrm.rm.bt_head.fit_bt_head`)."""

    epochs: float = 30.0
    weight_decay: float = 0.0
    seed: int = 0
    batch_size: int = 256  # large batches: few steps on thousands of pairs
    learning_rate: float = 1e-2

    def fit(self, e_chosen: torch.Tensor, e_rejected: torch.Tensor, module=None):
        return fit_bt_head(e_chosen, e_rejected, epochs=self.epochs, seed=self.seed,
                           weight_decay=self.weight_decay, batch_size=self.batch_size,
                           learning_rate=self.learning_rate, head=module)  # fmt: skip


class ModuleScorer:
    """A fitted torch module's reward of embeddings (its parameters frozen)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module.eval().requires_grad_(False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.float()).reshape(-1).to(x.dtype)


def fit_gold(emb: torch.Tensor, chosen, rejected, head: HeadSettings, *, hidden: int = 0):
    """Gold: a BT head on all pairs with clean labels, linear or (hidden > 0) a one-hidden-
    layer tanh MLP, seeded (`ModuleScorer`)."""
    if hidden == 0:
        return LinearScorer(head.fit(emb[chosen], emb[rejected]).weight)
    torch.manual_seed(head.seed)  # the MLP's initialisation
    mlp = torch.nn.Sequential(
        torch.nn.Linear(emb.shape[1], hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
    )
    return ModuleScorer(head.fit(emb[chosen], emb[rejected], module=mlp).head)


def regime_scorers(
    emb: torch.Tensor,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    *,
    label_noise: float,
    head: HeadSettings,
    families: Sequence[ProxyFamily],
) -> dict[str, Scorer]:
    """{"base": the proxy BT head, ...each family's rewards} for one noise level, as
    differentiable functions of embeddings.

    Args:
        emb: (N, D) embeddings of every candidate (the training pairs' responses included).
        chosen, rejected: (M,) candidate rows of the proxy's training pairs (clean labels).
    """
    noisy_c, noisy_r = flip(chosen, rejected, label_noise, seed=head.seed)
    base = LinearScorer(head.fit(emb[noisy_c], emb[noisy_r]).weight)
    out: dict[str, Scorer] = {"base": base}
    train = PairFeatures(emb, score_all({"base": base}, emb)["base"], noisy_c, noisy_r)
    for family in families:
        for name, scorer in family.fit_scorers(train, base).items():
            if name in out:
                raise ValueError(f"proxy family {family.name!r} reuses the name {name!r}")
            out[name] = scorer
    return out
