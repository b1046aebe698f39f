"""Reward over-optimisation curves: gold reward of policies that optimise a proxy reward.

Following Gao et al. (2023, "Scaling laws for reward model overoptimization") and Coste et
al. (2024, "Reward model ensembles help mitigate overoptimization"): for every proxy, the
expected gold reward per prompt of a policy family against KL(pi || pi0):

* best-of-n at n in `ns` (exact unbiased estimator; KL by the analytic formula, as Gao et
  al. plot it, with the exact KL of the discrete policy beside it);
* the KL-regularised optimum at *matched* KL targets (beta found per proxy, so every proxy
  is compared at the same optimisation pressure);
* a stepwise policy-gradient run (`policy_gradient.py`), checkpoint by checkpoint.

A `Curve` keeps the gold reward of every prompt at every point, so the fall from the peak
and every proxy-minus-proxy difference are paired over prompts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ebrm.overopt.policies import (
    beta_for_kl,
    bon_kl,
    bon_policy,
    kl_from_uniform,
    kl_regularised_policy,
)
from ebrm.overopt.policy_gradient import policy_gradient
from ebrm.overopt.prompt_stats import mean_se


@dataclass(frozen=True)
class Curve:
    """Gold reward of one policy family optimising one proxy, at J points of rising KL."""

    kl: torch.Tensor  # (J,) mean KL(pi || pi0) over prompts [nats]
    gold: torch.Tensor  # (P, J) expected gold reward per prompt
    labels: dict[str, list] = field(default_factory=dict)  # per point, e.g. {"n": [...]}

    def points(self) -> list[dict]:
        """{kl, gold, gold_se, ...labels} per point (mean and s.e. over prompts)."""
        out = []
        for j in range(len(self.kl)):
            mean, se = mean_se(self.gold[:, j])
            extra = {name: values[j] for name, values in self.labels.items()}
            out.append({"kl": float(self.kl[j]), "gold": mean, "gold_se": se, **extra})
        return out

    def summary(self) -> dict:
        """Peak of the mean gold curve, its KL, the gold at the largest KL and the fall.

        drop_from_peak_se is the standard error of the per-prompt fall (paired over prompts;
        the peak is located on the same prompts, so the drop is optimistic by selection).
        """
        mean = self.gold.mean(0)
        peak = int(mean.argmax())
        last = int(self.kl.argmax())
        drop, drop_se = mean_se(self.gold[:, peak] - self.gold[:, last])
        return {
            "gold_start": float(mean[0]),
            "gold_peak": float(mean[peak]),
            "kl_at_peak": float(self.kl[peak]),
            "gold_at_max_kl": float(mean[last]),
            "max_kl": float(self.kl[last]),
            "drop_from_peak": drop,
            "drop_from_peak_se": drop_se,
        }


def _gold_of(policy: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    return (policy * gold).sum(-1)  # (P,)


def bon_curve(gold: torch.Tensor, proxy: torch.Tensor, ns: Sequence[int]) -> Curve:
    """Best-of-n for n in `ns`; kl = log n - (n-1)/n, labels n and the exact discrete KL."""
    gold = torch.as_tensor(gold, dtype=torch.float64)
    cols, exact = [], []
    for n in ns:
        weights = bon_policy(proxy, n)  # (P, K)
        cols.append(_gold_of(weights, gold))
        exact.append(float(kl_from_uniform(weights).mean()))
    kl = torch.tensor([bon_kl(n) for n in ns], dtype=torch.float64)
    return Curve(kl, torch.stack(cols, 1), {"n": [int(n) for n in ns], "kl_exact": exact})


def kl_regularised_curve(
    gold: torch.Tensor, proxy: torch.Tensor, targets: Sequence[float]
) -> Curve:
    """The KL-regularised optimum at each target mean KL (beta found by bisection)."""
    gold = torch.as_tensor(gold, dtype=torch.float64)
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    cols, kls, betas = [], [], []
    previous = (-math.inf, None)  # (target, beta): a smaller target's beta bounds the search
    for target in targets:
        beta = beta_for_kl(proxy, target, upper=previous[1] if target >= previous[0] else None)
        previous = (target, beta)
        policy = kl_regularised_policy(proxy, beta)
        cols.append(_gold_of(policy, gold))
        kls.append(float(kl_from_uniform(policy).mean()))
        betas.append(beta)
    return Curve(torch.tensor(kls, dtype=torch.float64), torch.stack(cols, 1), {"beta": betas})


def policy_gradient_curve(
    gold: torch.Tensor,
    proxy: torch.Tensor,
    *,
    beta_relative: float,
    steps: int,
    checkpoints: Sequence[int],
    seed: int,
) -> Curve:
    """Gold and KL at the checkpoints of a policy-gradient run (beta in proxy spreads)."""
    gold = torch.as_tensor(gold, dtype=torch.float64)
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    spread = float(proxy.std(-1).mean()) or 1.0
    policies = policy_gradient(proxy / spread, beta=beta_relative, steps=steps,
                               checkpoints=checkpoints, seed=seed)  # fmt: skip
    steps_done = sorted(policies)
    kl = torch.stack([kl_from_uniform(policies[s]).mean() for s in steps_done])
    gold_cols = torch.stack([_gold_of(policies[s], gold) for s in steps_done], 1)
    return Curve(kl, gold_cols, {"step": steps_done})


def kl_targets(max_kl: float, step: float = 0.25) -> list[float]:
    """0, step, 2 step, ... up to `max_kl` (inclusive when it falls on the grid)."""
    count = int(math.floor(max_kl / step + 1e-9))
    return [round(i * step, 10) for i in range(count + 1)]


def bon_ns(num_candidates: int) -> list[int]:
    """1, 2, 4, ... below K, then K itself."""
    ns, n = [], 1
    while n < num_candidates:
        ns.append(n)
        n *= 2
    return [*ns, num_candidates]
