"""Reward over-optimisation curves: gold reward of policies that optimise a proxy reward.

Following Gao et al. (2023, "Scaling laws for reward model overoptimization") and Coste et
al. (2024, "Reward model ensembles help mitigate overoptimization"), each prompt has a pool
of K candidate responses, the reference policy pi0 is uniform over the pool, and two
families of policies optimise a proxy reward r:

* **best-of-n** for n = 1..N: expected gold reward from the exact unbiased estimator
  (`best_of_n.best_of_n_weights`), with the analytic KL(pi_bon || pi0) = log n - (n-1)/n
  (the upper bound used by Gao et al.; exact for continuous rewards and a large pool);
* **the KL-regularised optimum** pi_beta(k) = pi0(k) exp(r_k / beta) / Z over the pool, whose
  KL(pi_beta || pi0) and expected gold reward are computed exactly, for a range of beta.

Curves are averages over prompts (with the standard error over prompts). A proxy that is
over-optimised shows a gold reward that rises with KL, peaks, and falls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from ebrm.integrations.best_of_n import best_of_n_weights


def bon_kl(n: int) -> float:
    """KL(best-of-n || pi0) = log n - (n - 1) / n (Stiennon et al. 2020; Gao et al. 2023)."""
    if n < 1:
        raise ValueError(f"n must be >= 1. Got {n} instead.")
    return math.log(n) - (n - 1) / n


def kl_regularised_policy(proxy: torch.Tensor, beta: float) -> torch.Tensor:
    """pi(k) ∝ exp(r_k / beta) over each row (pi0 uniform); (P, K) -> (P, K) float64.

    beta = inf gives pi0; beta -> 0 gives the proxy argmax (ties shared).
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0. Got {beta} instead.")
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    if math.isinf(beta):
        return torch.full_like(proxy, 1.0 / proxy.shape[-1])
    return torch.softmax(proxy / beta, dim=-1)


def kl_from_uniform(policy: torch.Tensor) -> torch.Tensor:
    """KL(pi || uniform) = sum_k pi_k log(K pi_k) per row, with 0 log 0 = 0; (P, K) -> (P,)."""
    policy = torch.as_tensor(policy, dtype=torch.float64)
    k = policy.shape[-1]
    return torch.xlogy(policy, policy).sum(-1) + math.log(k)


def _mean_se(values: torch.Tensor) -> tuple[float, float]:
    """Mean over prompts and its standard error."""
    n = values.numel()
    se = float(values.std(unbiased=True) / math.sqrt(n)) if n > 1 else 0.0
    return float(values.mean()), se


def bon_policy(proxy: torch.Tensor, n: int) -> torch.Tensor:
    """Best-of-n selection probabilities per row (P, K), ties in a row shared equally."""
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    ordered = proxy.sort(-1).values
    if bool((ordered[:, 1:] > ordered[:, :-1]).all()):  # no ties: one weight per rank
        by_rank = best_of_n_weights(torch.arange(proxy.shape[1], dtype=torch.float64), n)
        return by_rank[proxy.argsort(-1).argsort(-1)]
    return torch.stack([best_of_n_weights(row, n) for row in proxy])


def bon_curve(gold: torch.Tensor, proxy: torch.Tensor, ns: Sequence[int]) -> list[dict]:
    """Best-of-n points {n, kl, gold, gold_se} for (P, K) gold and proxy rewards."""
    gold = torch.as_tensor(gold, dtype=torch.float64)
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    points = []
    for n in ns:
        weights = bon_policy(proxy, n)  # (P, K)
        mean, se = _mean_se((weights * gold).sum(-1))
        points.append({"n": int(n), "kl": bon_kl(n), "gold": mean, "gold_se": se})
    return points


def kl_regularised_curve(
    gold: torch.Tensor, proxy: torch.Tensor, betas: Sequence[float]
) -> list[dict]:
    """KL-regularised points {beta, kl, gold, gold_se, proxy}, sorted by increasing KL."""
    gold = torch.as_tensor(gold, dtype=torch.float64)
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    points = []
    for beta in betas:
        policy = kl_regularised_policy(proxy, beta)
        mean, se = _mean_se((policy * gold).sum(-1))
        points.append(
            {
                "beta": float(beta),
                "kl": float(kl_from_uniform(policy).mean()),
                "gold": mean,
                "gold_se": se,
                "proxy": float((policy * proxy).sum(-1).mean()),
            }
        )
    return sorted(points, key=lambda p: p["kl"])


def paired_gain(
    gold: torch.Tensor,
    proxy: torch.Tensor,
    reference: torch.Tensor,
    *,
    n: int,
    beta: float,
    reference_beta: float | None = None,
) -> dict:
    """Per-prompt gold difference (proxy - reference policy), mean and s.e. over prompts.

    Both at best-of-n with this `n` and at the KL-regularised policy with this `beta`; the
    prompts are shared, so the pairing removes the prompt-to-prompt variance.
    `reference_beta` (default `beta`) is the reference proxy's temperature.
    """
    reference_beta = beta if reference_beta is None else reference_beta
    gold = torch.as_tensor(gold, dtype=torch.float64)
    out = {}
    for kind, policy in (
        ("best_of_n", lambda r, _b: bon_policy(r, n)),
        ("kl_regularised", kl_regularised_policy),
    ):
        a = (policy(torch.as_tensor(proxy, dtype=torch.float64), beta) * gold).sum(-1)
        b = policy(torch.as_tensor(reference, dtype=torch.float64), reference_beta) * gold
        b = b.sum(-1)
        mean, se = _mean_se(a - b)
        out[kind] = {"mean": mean, "se": se}
    return {"n": n, "beta": beta, "reference_beta": reference_beta, **out}


def default_betas(num: int = 41, low: float = 1e-2, high: float = 1e2) -> list[float]:
    """inf, then `num` log-spaced values from `high` down to `low` (in proxy units)."""
    return [math.inf] + torch.logspace(math.log10(high), math.log10(low), num).tolist()


def summarise(points: Sequence[dict]) -> dict:
    """Where the gold reward peaks and its value at the largest KL."""
    peak = max(points, key=lambda p: p["gold"])
    last = max(points, key=lambda p: p["kl"])
    keys = ("kl", "gold", "gold_se", "n", "beta")
    return {
        "peak": {k: peak[k] for k in keys if k in peak},
        "at_max_kl": {k: last[k] for k in keys if k in last},
        "start": points[0]["gold"],
        "drop_from_peak": peak["gold"] - last["gold"],
    }


def overopt_curves(
    gold: torch.Tensor,
    proxies: Mapping[str, torch.Tensor],
    *,
    max_n: int | None = None,
    betas: Sequence[float] | None = None,
    include_oracle: bool = True,
    relative_betas: bool = True,
) -> dict:
    """Best-of-n and KL-regularised curves for every proxy, with summaries.

    Args:
        gold: (P, K) gold rewards of the pool.
        proxies: name -> (P, K) proxy rewards of the same candidates.
        max_n: largest n for best-of-n (default K).
        betas: temperatures of the KL-regularised policy (default `default_betas()`).
        include_oracle: also add "gold" (the gold reward optimised directly) as a reference.
        relative_betas: multiply `betas` by each proxy's mean within-prompt standard
            deviation (proxies on different scales then cover the same KL range).

    Returns:
        {name: {"best_of_n": [...], "kl_regularised": [...], "summary": {"best_of_n": ...,
        "kl_regularised": ...}}}.
    """
    gold = torch.as_tensor(gold, dtype=torch.float64)
    if gold.ndim != 2:
        raise ValueError(f"gold must be (prompts, candidates); got shape {tuple(gold.shape)}.")
    k = gold.shape[1]
    max_n = k if max_n is None else max_n
    if not 1 <= max_n <= k:
        raise ValueError(f"max_n must be in 1..{k} (the candidates per prompt). Got {max_n}.")
    betas = default_betas() if betas is None else list(betas)
    named = dict(proxies)
    if include_oracle:
        named["gold"] = gold
    out = {}
    for name, proxy in named.items():
        proxy = torch.as_tensor(proxy, dtype=torch.float64)
        if proxy.shape != gold.shape:
            raise ValueError(
                f"proxy {name!r} has shape {tuple(proxy.shape)} but gold has {tuple(gold.shape)}."
            )
        bon = bon_curve(gold, proxy, range(1, max_n + 1))
        # beta in units of the proxy's own spread, so every proxy spans the same KL range
        scale = float(proxy.std(-1).mean()) if relative_betas else 1.0
        scale = scale if scale > 0 else 1.0
        klr = kl_regularised_curve(gold, proxy, [b * scale for b in betas])
        for point in klr:
            point["beta_relative"] = point["beta"] / scale
        out[name] = {
            "best_of_n": bon,
            "kl_regularised": klr,
            "summary": {"best_of_n": summarise(bon), "kl_regularised": summarise(klr)},
        }
    return out


def plot_overopt(curves: Mapping[str, dict], path, *, title: str = "") -> None:
    """Gold reward vs KL (best-of-n solid, KL-regularised dashed) and vs n, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_kl, ax_n) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = {"base": "tab:blue", "refined": "tab:orange", "conservative": "tab:green",
              "gold": "0.5"}  # fmt: skip
    for i, (name, curve) in enumerate(curves.items()):
        color = colors.get(name, f"C{i + 3}")
        style = {"color": color, "alpha": 0.6 if name == "gold" else 1.0}
        bon, klr = curve["best_of_n"], curve["kl_regularised"]
        label = "gold (oracle)" if name == "gold" else name
        ax_kl.plot([p["kl"] for p in bon], [p["gold"] for p in bon], "-", label=f"{label} BoN",
                   **style)  # fmt: skip
        ax_kl.plot([p["kl"] for p in klr], [p["gold"] for p in klr], "--",
                   label=f"{label} KL-reg", **style)  # fmt: skip
        ns = [p["n"] for p in bon]
        mean = torch.tensor([p["gold"] for p in bon])
        se = torch.tensor([p["gold_se"] for p in bon])
        ax_n.plot(ns, mean, "-", label=label, **style)
        ax_n.fill_between(ns, mean - se, mean + se, color=color, alpha=0.15)
    ax_kl.set_xlabel("KL(pi || pi0) [nats]")
    ax_kl.set_ylabel("gold reward (mean over prompts)")
    ax_kl.set_title("gold reward vs KL")
    ax_kl.legend(fontsize=7, ncol=2)
    ax_n.set_xscale("log", base=2)
    ax_n.set_xlabel("n (best-of-n)")
    ax_n.set_title("best-of-n: gold reward vs n (±1 s.e. over prompts)")
    ax_n.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from ebrm._io import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
