"""Evaluate a refined reward model on a benchmark: one scoring pass, base and refined side by side.

`evaluate` scores every unique response once with the base RM (embedding + raw reward),
refines those same embeddings, and computes both sides' metrics from that single pass.
`evaluate_scores` and `evaluate_features` take precomputed rewards or stored features, so
the demo and the experiments reuse the metrics and the report without re-scoring.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebrm.data.types import Conversation, PreferencePair, RMBenchItem
from ebrm.errors import ConfigError, DataFormatError
from ebrm.evaluation.calibration import bt_probability
from ebrm.evaluation.pairwise import pairwise_metrics
from ebrm.evaluation.report import write_outputs
from ebrm.evaluation.rewardbench import rewardbench_metrics
from ebrm.evaluation.rmbench import rmbench_metrics

logger = logging.getLogger(__name__)

BENCHMARKS = ("pairwise", "rm-bench", "reward-bench")
REWARD_KINDS = ("refined", "mean", "mode", "median", "conservative")  # RefinedRewards.reward_for
_P_BETTER_CHUNK = 2048  # pairs per p_better call: bounds the (pairs x grid) work buffer


def _check_benchmark(benchmark: str) -> None:
    if benchmark not in BENCHMARKS:
        raise ConfigError(
            f"Unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}."
        )


def _check_kind(kind: str) -> None:
    if kind not in REWARD_KINDS:
        raise ConfigError(
            f"Unknown refined reward kind {kind!r}; choose one of {', '.join(REWARD_KINDS)}."
        )


def _np(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def evaluate_scores(
    benchmark: str,
    *,
    base_chosen: Any,
    base_rejected: Any,
    refined_chosen: Any,
    refined_rejected: Any,
    base_raw_chosen: Any | None = None,
    base_raw_rejected: Any | None = None,
    p_refined: Any | None = None,
    labels: Sequence[str | None] | None = None,
    data: str = "",
    out_dir: str | Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    make_figures: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Metrics (and, with `out_dir`, the report folder) from precomputed rewards.

    Args:
        benchmark: "pairwise", "rm-bench" or "reward-bench".
        base_chosen, base_rejected, refined_chosen, refined_rejected: rewards of the same
            pairs in the same order, normalised units: (P,) for pairwise/reward-bench, (P, 3)
            in style order for rm-bench.
        base_raw_chosen, base_raw_rejected: the base RM's raw rewards (P,), for its
            Bradley-Terry probability sigmoid(r_c - r_r) (calibration; pairwise and
            reward-bench).
        p_refined: (P,) refined P(chosen > rejected) (calibration; pairwise, reward-bench).
        labels: (P,) RewardBench subset or RM-Bench domain per row (required for those).
        data: the data spec, recorded in metrics.json.
        out_dir: write metrics.json, report.md and PNGs here when given.
        n_boot, seed: bootstrap replicates and seed.
        make_figures: write the PNG plots (report.md links only what exists).
        extra: more top-level keys for metrics.json (e.g. model provenance).

    Returns:
        The metrics.json object.
    """
    _check_benchmark(benchmark)
    bc, br, rc, rr = (
        _np(v) for v in (base_chosen, base_rejected, refined_chosen, refined_rejected)
    )
    opts = {"data": data, "n_boot": n_boot, "seed": seed}
    p_base = None
    if base_raw_chosen is not None and base_raw_rejected is not None:
        p_base = bt_probability(_np(base_raw_chosen), _np(base_raw_rejected))
    probs = {"p_base": p_base, "p_refined": _np(p_refined)}
    if benchmark == "pairwise":
        metrics = pairwise_metrics(bc, br, rc, rr, **probs, **opts)
    elif labels is None:
        raise DataFormatError(
            f"{benchmark} needs a subset/domain label per row (labels=...); none were given"
        )
    elif benchmark == "rm-bench":
        metrics = rmbench_metrics([str(x) for x in labels], bc, br, rc, rr, **opts)
    else:
        metrics = rewardbench_metrics(list(labels), bc, br, rc, rr, **probs, **opts)
    if extra:
        metrics.update(extra)
    if out_dir is not None:
        write_outputs(
            metrics,
            out_dir,
            base_chosen=bc,
            base_rejected=br,
            refined_chosen=rc,
            refined_rejected=rr,
            make_figures=make_figures,
        )
    return metrics


def score_responses(
    model: Any, convs: Sequence[Conversation], *, batch_size: int = 16, progress: bool = False
) -> tuple[Any, torch.Tensor | None]:
    """One pass of the base RM over `convs`, refined: (RefinedRewards, embeddings or None).

    With a model exposing `base_rm` and `refine`, the embeddings are kept so that the
    refined P(chosen > rejected) can come from the posteriors; otherwise `model.score`
    is used and the embeddings are None.
    """
    base_rm = getattr(model, "base_rm", None)
    if base_rm is not None and hasattr(model, "refine"):
        embeddings, raw = base_rm.embed_conversations(
            list(convs), batch_size=batch_size, progress=progress
        )
        kwargs = {"progress": progress} if _accepts(model.refine, "progress") else {}
        return model.refine(embeddings, raw, **kwargs), embeddings
    return model.score(list(convs), batch_size=batch_size, progress=progress), None


def refined_p_better(
    model: Any,
    rewards: Any,
    embeddings: torch.Tensor | None,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
) -> tuple[np.ndarray, str]:
    """P(chosen > rejected) of the refined model and how it was obtained.

    "posterior": the model's `p_better` on the energy posteriors (exact on its grid);
    "gaussian": Phi((mu_c - mu_r) / sqrt(s_c^2 + s_r^2)) from posterior means and stds,
    an approximation used only when no embeddings are available.
    """
    if embeddings is not None and hasattr(model, "p_better"):
        parts = []
        with torch.no_grad():
            for start in range(0, len(chosen), _P_BETTER_CHUNK):
                c = chosen[start : start + _P_BETTER_CHUNK]
                r = rejected[start : start + _P_BETTER_CHUNK]
                parts.append(model.p_better(embeddings[c], embeddings[r]).detach().cpu())
        p = torch.cat(parts) if parts else torch.zeros(0)
        return p.double().clamp(0.0, 1.0).numpy(), "posterior"
    mean, std = rewards.mean.double(), rewards.std.double()
    scale = torch.sqrt(std[chosen] ** 2 + std[rejected] ** 2).clamp_min(1e-12)
    z = (mean[chosen] - mean[rejected]) / scale
    return (0.5 * (1.0 + torch.erf(z / 2**0.5))).numpy(), "gaussian"


def _accepts(func: Any, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def _index(convs: Sequence[Conversation]) -> tuple[list[Conversation], list[int]]:
    """Unique conversations (first-seen order) and each input's row among them."""
    rows: dict[Conversation, int] = {}
    index = [rows.setdefault(conv, len(rows)) for conv in convs]
    return list(rows), index


def _load(benchmark: str, data_spec: Any, limit: int | None) -> tuple[list, str]:
    if not isinstance(data_spec, (str, Path)):
        return list(data_spec)[:limit], "<in-memory>"
    from ebrm import data as data_module

    if benchmark == "rm-bench":
        return data_module.load_rmbench(str(data_spec), limit=limit), str(data_spec)
    return data_module.load_pairs(str(data_spec), limit=limit), str(data_spec)


def _provenance(model: Any, rewards: Any, kind: str) -> dict[str, Any]:
    info = getattr(model, "base_rm_info", None) or {}
    return {
        "model": {
            "base_rm": info.get("name_or_path"),
            "refined_reward": kind,
            "method": getattr(rewards, "method", None),
        }
    }


def evaluate(
    model: Any,
    benchmark: str,
    data_spec: str | Path | Sequence[PreferencePair] | Sequence[RMBenchItem],
    out_dir: str | Path | None = None,
    *,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = True,
    n_boot: int = 2000,
    limit: int | None = None,
    kind: str = "refined",
    make_figures: bool = True,
) -> dict[str, Any]:
    """Score a benchmark once and report base vs refined.

    Args:
        model: an `EnergyRewardModel` (anything with `base_rm.embed_conversations`,
            `refine` and `p_better`, or at least `score`).
        benchmark: "pairwise", "rm-bench" or "reward-bench".
        data_spec: a data spec for `ebrm.data.load_pairs` / `load_rmbench`, or the loaded
            pairs / RM-Bench items.
        out_dir: report folder (metrics.json, report.md, PNGs); None computes only.
        batch_size: texts per base-RM forward pass.
        seed: bootstrap seed.
        progress: show a progress bar while embedding.
        n_boot: bootstrap replicates.
        limit: evaluate at most this many pairs / prompts.
        kind: which refined reward to evaluate: refined|mean|mode|median|conservative.
        make_figures: write the PNG plots.

    Returns:
        The metrics.json object.

    Raises:
        ConfigError: unknown benchmark or reward kind.
        DataFormatError: unreadable data, or no pairs in it.
    """
    _check_benchmark(benchmark)
    _check_kind(kind)
    rows, data_name = _load(benchmark, data_spec, limit)
    if not rows:
        raise DataFormatError(f"{data_name}: no {benchmark} rows to evaluate")
    if benchmark == "rm-bench":
        if not all(isinstance(r, RMBenchItem) for r in rows):
            raise DataFormatError(f"{data_name}: rm-bench needs RM-Bench items (3 x 3 responses)")
        convs = [
            Conversation(messages=item.messages, response=text)
            for item in rows
            for text in (*item.chosen, *item.rejected)
        ]
    else:
        convs = [c for pair in rows for c in (pair.chosen, pair.rejected)]
    unique, index = _index(convs)
    logger.info("scoring %d unique responses of %d %s rows", len(unique), len(rows), benchmark)
    rewards, embeddings = score_responses(model, unique, batch_size=batch_size, progress=progress)
    refined_all = rewards.reward_for(kind).detach().cpu().double()
    base_all = rewards.base.detach().cpu().double()
    raw_all = rewards.base_raw.detach().cpu().double()
    idx = torch.as_tensor(index, dtype=torch.long)
    common = {
        "data": data_name,
        "out_dir": out_dir,
        "n_boot": n_boot,
        "seed": seed,
        "make_figures": make_figures,
        "extra": _provenance(model, rewards, kind),
    }
    if benchmark == "rm-bench":
        grid = idx.view(len(rows), 2, 3)  # (P, chosen/rejected, style)
        c, r = grid[:, 0], grid[:, 1]
        return evaluate_scores(
            benchmark,
            base_chosen=base_all[c].numpy(),
            base_rejected=base_all[r].numpy(),
            refined_chosen=refined_all[c].numpy(),
            refined_rejected=refined_all[r].numpy(),
            labels=[item.domain for item in rows],
            **common,
        )
    c, r = idx[0::2], idx[1::2]
    p_refined, how = refined_p_better(model, rewards, embeddings, c, r)
    common["extra"]["model"]["p_better"] = how
    return evaluate_scores(
        benchmark,
        base_chosen=base_all[c].numpy(),
        base_rejected=base_all[r].numpy(),
        refined_chosen=refined_all[c].numpy(),
        refined_rejected=refined_all[r].numpy(),
        base_raw_chosen=raw_all[c].numpy(),
        base_raw_rejected=raw_all[r].numpy(),
        p_refined=p_refined,
        labels=[pair.subset for pair in rows],
        **common,
    )


def evaluate_features(
    model: Any,
    features: Any,
    out_dir: str | Path | None = None,
    *,
    data: str = "",
    seed: int = 0,
    n_boot: int = 2000,
    kind: str = "refined",
    make_figures: bool = True,
) -> dict[str, Any]:
    """Pairwise metrics from stored features (`ebrm.features.table.PairFeatures`).

    Refines every stored row once (no base-RM pass), then scores the feature table's pairs;
    this is what the demo and the experiments use on their held-out splits.
    """
    _check_kind(kind)
    rewards = model.refine(features.embeddings, features.rewards)
    c, r = features.chosen.long(), features.rejected.long()
    p_refined, how = refined_p_better(model, rewards, features.embeddings, c, r)
    refined_all = rewards.reward_for(kind).detach().cpu().double()
    base_all = rewards.base.detach().cpu().double()
    raw_all = rewards.base_raw.detach().cpu().double()
    extra = _provenance(model, rewards, kind)
    extra["model"]["p_better"] = how
    return evaluate_scores(
        "pairwise",
        base_chosen=base_all[c].numpy(),
        base_rejected=base_all[r].numpy(),
        refined_chosen=refined_all[c].numpy(),
        refined_rejected=refined_all[r].numpy(),
        base_raw_chosen=raw_all[c].numpy(),
        base_raw_rejected=raw_all[r].numpy(),
        p_refined=p_refined,
        data=data,
        out_dir=out_dir,
        n_boot=n_boot,
        seed=seed,
        make_figures=make_figures,
        extra=extra,
    )
