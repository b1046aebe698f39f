"""A stepwise policy-gradient policy over each prompt's pool (REINFORCE, GRPO-style baseline).

The policy is categorical over the K candidates, pi = softmax(theta) per prompt, started at
pi0 (uniform). Each step samples `samples` candidates per prompt, shapes their reward with
the per-sample KL penalty of RLHF, s_k = r_k - beta * log(pi_k / pi0_k), subtracts the
group mean (GRPO's baseline) and ascends the score-function gradient with Adam:

    g = mean_s A_s * (onehot(k_s) - pi)     (an unbiased estimate of pi * (s - E_pi[s]))

`exact=True` uses the expectation itself. The fixed point of both is the closed-form
KL-regularised optimum pi ∝ pi0 exp(r / beta) (`policies.kl_regularised_policy`); along the
way the policy moves away from pi0, so checkpoints trace gold reward against KL like an RL
run does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _shaped_gradient(theta, proxy, beta, samples, generator, exact):
    """Ascent direction for theta (P, K) of E_pi[r] - beta KL(pi || pi0)."""
    log_pi = torch.log_softmax(theta, -1)  # (P, K)
    pi = log_pi.exp()
    shaped = proxy - beta * (log_pi + torch.log(torch.tensor(float(theta.shape[1]))))
    if exact:
        return pi * (shaped - (pi * shaped).sum(-1, keepdim=True))
    # inverse-CDF sampling (with replacement): far cheaper than multinomial on wide rows
    cdf = pi.cumsum(-1)
    u = torch.rand(pi.shape[0], samples, generator=generator, dtype=pi.dtype) * cdf[:, -1:]
    picks = torch.searchsorted(cdf, u).clamp(max=pi.shape[1] - 1)  # (P, S)
    values = shaped.gather(1, picks)  # (P, S)
    advantage = values - values.mean(-1, keepdim=True)  # GRPO: the group mean as baseline
    grad = torch.zeros_like(theta).scatter_add_(1, picks, advantage) / samples
    return grad - pi * advantage.mean(-1, keepdim=True)  # the -pi term of d log pi (= 0 here)


def policy_gradient(
    proxy: torch.Tensor,
    *,
    beta: float,
    steps: int,
    checkpoints: Sequence[int] = (),
    learning_rate: float = 0.1,
    samples: int = 32,
    exact: bool = False,
    seed: int = 0,
) -> dict[int, torch.Tensor]:
    """Policies (P, K) float64 at each checkpoint step (and at `steps`), keyed by step.

    Args:
        proxy: (P, K) rewards of each prompt's candidates (what the policy optimises).
        beta: KL penalty coefficient, in the proxy's units.
        steps: optimiser steps.
        checkpoints: steps after which to record the policy (0 = pi0).
        learning_rate: Adam step size on the logits.
        samples: candidates sampled per prompt and step (the group).
        exact: use the expected gradient instead of samples.
        seed: seeds the sampling.
    """
    if not beta > 0 or steps < 0 or samples < 1:
        raise ValueError(
            f"need beta > 0, steps >= 0, samples >= 1; got {beta}, {steps}, {samples}."
        )
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    theta = torch.zeros_like(proxy, requires_grad=True)
    optimiser = torch.optim.Adam([theta], lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    wanted = set(checkpoints) | {steps}
    out = {}
    for step in range(steps + 1):
        if step in wanted:
            out[step] = torch.softmax(theta.detach(), -1)
        if step == steps:
            break
        with torch.no_grad():
            grad = _shaped_gradient(theta.detach(), proxy, beta, samples, generator, exact)
        optimiser.zero_grad()
        theta.grad = -grad  # Adam minimises
        optimiser.step()
    return out
