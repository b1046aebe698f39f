"""The one evaluation path: responses -> rewards (base, refined, ...) -> benchmark metrics.

- `evaluate_rewards`: metrics (and the report folder) from rewards already computed, for
  any benchmark and any set of named rewards; `evaluate_scores` the same from rewards
  already gathered over the units; every other entry point ends here.
- `refine_and_evaluate`: refine stored embeddings with a model, build its "base" and
  "refined" rewards (each with its P(a > b)), add the caller's references, evaluate.
  The demo and the experiments go through it.
- `evaluate`: load a benchmark's data, embed every unique response once with the model's
  base RM, and evaluate like `refine_and_evaluate` (what `ebrm eval` runs).

Both refine a chunk of responses at a time and keep only per-response scalars and
per-pair probabilities (`ebrm.evaluation.streaming`): `evaluate` never holds the
embeddings of all responses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebrm._provenance import computed_with
from ebrm.data.types import Conversation
from ebrm.errors import ConfigError, DataFormatError
from ebrm.evaluation.benchmark import BASE, REFINED, Benchmark
from ebrm.evaluation.calibration import bt_probability
from ebrm.evaluation.fair import BASE_CALIBRATED, calibration_block, reference_rewards_of
from ebrm.evaluation.names import DEFAULT_N_BOOT, DEFAULT_SEED
from ebrm.evaluation.protocols import RefiningModel, TextRefiningModel
from ebrm.evaluation.registry import get_benchmark
from ebrm.evaluation.report import write_outputs
from ebrm.evaluation.streaming import CHUNK_ROWS, Fetch, stream_scores
from ebrm.evaluation.units import PBetter, Reward, Units, UnitScores, gather
from ebrm.refine.kinds import DEFAULT_REWARD, REFERENCE_KINDS, RewardKind, resolve_reward
from ebrm.refine.results import RefinedRewards
from ebrm.rm.names import DEFAULT_BATCH_SIZE

logger = logging.getLogger(__name__)

_P_BETTER_CHUNK = 2048  # pairs per p_better call: bounds the (pairs x grid) work buffer


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation produced: the metrics.json object and every reward's unit scores."""

    metrics: dict[str, Any]
    units: Units
    scores: dict[str, UnitScores]  # reward name -> its scores over the units


def evaluate_rewards(
    benchmark: str | Benchmark,
    units: Units,
    rewards: Mapping[str, Reward],
    *,
    data: str = "",
    out_dir: str | Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    make_figures: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Metrics of every reward on `units`, each compared with "base" (paired).

    Args:
        benchmark: a registered name ("pairwise", "rm-bench", "reward-bench") or a
            `Benchmark`.
        units: which responses each unit ranks above which (rows into the rewards' values).
        rewards: name -> `Reward`; must hold "base"; "refined" gives metrics.json's
            "delta" and verdict; any other name (a reference reward) gets its own side and
            paired difference in "deltas".
        data: the data spec, recorded in metrics.json.
        out_dir: write metrics.json, report.md, examples-<reward>.jsonl and PNGs here.
        n_boot, seed: bootstrap replicates and seed.
        make_figures: write the PNG plots (report.md links only what exists).
        extra: more top-level keys for metrics.json (e.g. model provenance).

    Raises:
        ConfigError: an unknown benchmark.
        DataFormatError: no units.
    """
    bench = get_benchmark(benchmark)
    if not len(units):
        raise DataFormatError(f"{data or '<data>'}: no {bench.name} rows to evaluate")
    scores = {name: gather(reward, units) for name, reward in rewards.items()}
    return evaluate_scores(
        bench, units, scores, data=data, out_dir=out_dir, n_boot=n_boot, seed=seed,
        make_figures=make_figures, extra=extra,
    )  # fmt: skip


def evaluate_scores(
    benchmark: str | Benchmark,
    units: Units,
    scores: Mapping[str, UnitScores],
    *,
    data: str = "",
    out_dir: str | Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    make_figures: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Evaluation:
    """`evaluate_rewards` of rewards already gathered over the units (`gather`)."""
    bench = get_benchmark(benchmark)
    if not len(units):
        raise DataFormatError(f"{data or '<data>'}: no {bench.name} rows to evaluate")
    scores = dict(scores)
    body = bench.metrics(units, scores, n_boot=n_boot, seed=seed)
    metrics = {"benchmark": body.pop("benchmark"), "data": data, **body, **(extra or {})}
    if out_dir is not None:
        write_outputs(metrics, out_dir, units=units, scores=scores, make_figures=make_figures)
    return Evaluation(metrics, units, scores)


def model_p_better(model: RefiningModel, embeddings: torch.Tensor) -> PBetter:
    """The refined P(a > b) of rows a, b of `embeddings` (the model's posterior comparison)."""

    def p_better(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a_t, b_t = torch.as_tensor(a, dtype=torch.long), torch.as_tensor(b, dtype=torch.long)
        parts = []
        with torch.no_grad():
            for start in range(0, len(a_t), _P_BETTER_CHUNK):
                ea = embeddings[a_t[start : start + _P_BETTER_CHUNK]]
                eb = embeddings[b_t[start : start + _P_BETTER_CHUNK]]
                parts.append(model.p_better(ea, eb).detach().cpu())
        p = torch.cat(parts) if parts else torch.zeros(0)
        return p.double().clamp(0.0, 1.0).numpy()

    return p_better


def bt_p_better(raw: np.ndarray) -> PBetter:
    """The base RM's Bradley-Terry P(a > b) = sigmoid(r_a - r_b) in its raw units."""
    return lambda a, b: bt_probability(raw[a], raw[b])


def model_rewards(
    model: RefiningModel,
    embeddings: torch.Tensor,
    raw_rewards: torch.Tensor,
    *,
    reward: RewardKind = DEFAULT_REWARD,
    method: str | None = None,
    progress: bool = False,
) -> tuple[dict[str, Reward], RefinedRewards]:
    """{"base", "refined"} rewards of every row (refined = `reward` of the refinement by
    `method`), each with its P(a > b), and the `RefinedRewards` they came from; plus the
    model's stored references ("base-calibrated", "laplace", "ensemble") when it has them."""
    refined = model.refine(embeddings, raw_rewards, method=method, progress=progress)
    raw = refined.base_raw.detach().cpu().double().numpy()
    base_values = refined.base.detach().cpu().double()
    rewards = {
        BASE: Reward.of(base_values, bt_p_better(raw)),
        REFINED: Reward.of(
            refined.reward_for(reward).detach().cpu().double(), model_p_better(model, embeddings)
        ),
    }
    if model.references is not None:
        k = model.refine_config.conservative_k
        rewards.update(
            reference_rewards_of(
                model.references, embeddings, refined.base_raw, base_values, k=k, reward=reward
            )
        )
    return rewards, refined


def temperatures_of(model: RefiningModel) -> dict[str, float]:
    """The temperature behind each reward's P(a > b) ("base" raw: its calibrated twin's)."""
    out = {REFINED: float(model.refine_config.p_better_temperature)}
    if model.references is not None:
        out[BASE] = model.references.base_temperature
        out.update({n: float(r.temperature) for n, r in model.references.rewards.items()})
    return out


def refine_and_evaluate(
    model: RefiningModel,
    benchmark: str | Benchmark,
    units: Units,
    embeddings: torch.Tensor,
    raw_rewards: torch.Tensor,
    *,
    reward: RewardKind | str | None = None,
    method: str | None = None,
    references: Mapping[str, Reward] | None = None,
    progress: bool = False,
    kind: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    **options: Any,
) -> Evaluation:
    """Refine the rows the units use, then evaluate base, refined and any references.

    Args:
        model: the refined reward model (`EnergyRewardModel`).
        benchmark: a registered name or a `Benchmark`.
        units: rows into `embeddings` / `raw_rewards` (only those rows are refined).
        embeddings, raw_rewards: (N, D) and (N,) base-RM features of the responses.
        reward: which refined reward is "refined" (a `RewardKind`; default "refined").
        method: override the model's refinement method (e.g. "paper").
        references: more named rewards over the same N rows (e.g. a Laplace head).
        progress: show a progress bar while refining.
        kind: the deprecated name of `reward` (warns).
        chunk_rows: rows refined at a time (the results do not depend on it).
        **options: `evaluate_rewards` options (data, out_dir, n_boot, seed, make_figures,
            extra).

    Raises:
        ConfigError: unknown benchmark or reward kind.
    """
    reward = resolve_reward(reward, kind, old_name="kind")
    _check_refined_reward(reward)
    rows, compact = _compact(units, int(embeddings.shape[0]))
    rows_t = torch.as_tensor(rows, dtype=torch.long)

    def fetch(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        part = rows_t[start:stop]
        return embeddings[part], raw_rewards[part]

    more = {
        name: gather(Reward(ref.values[rows], _restricted(ref.p_better, rows)), compact)
        for name, ref in (references or {}).items()
    }
    return _evaluate_chunked(
        model, benchmark, compact, fetch, reward=reward, method=method, more=more,
        progress=progress, chunk_rows=chunk_rows, **options,
    )  # fmt: skip


def _compact(units: Units, n_rows: int) -> tuple[np.ndarray, Units]:
    """The rows the units use (sorted) and the units renumbered to index them."""
    rows = units.rows()
    index = np.full(n_rows, -1, dtype=np.int64)
    index[rows] = np.arange(rows.size)
    return rows, units.remap(index)


def _evaluate_chunked(
    model: RefiningModel,
    benchmark: str | Benchmark,
    units: Units,
    fetch: Fetch,
    *,
    reward: RewardKind,
    method: str | None,
    more: Mapping[str, UnitScores],
    progress: bool,
    chunk_rows: int = CHUNK_ROWS,
    **options: Any,
) -> Evaluation:
    """`refine_and_evaluate` of compact units (every row 0..n-1 used), the responses
    fetched and refined a chunk at a time (`stream_scores`); `more`: the caller's rewards."""
    n_rows = int(units.rows().size)
    streamed = stream_scores(
        model, units, n_rows, fetch, reward=reward, method=method, chunk_rows=chunk_rows,
        progress=progress,
    )  # fmt: skip
    scores = {**streamed.scores, **more}
    info = dict(options.pop("extra", None) or {})
    if model.references is not None and units.is_pairwise and len(units):
        # raw and temperature-scaled calibration; "base" scaled is "base-calibrated"
        scaled = {BASE: BASE_CALIBRATED, REFINED: REFINED, "laplace": "laplace"}
        scaled["ensemble"] = "ensemble"
        p = {name: scores[source].p_chosen for name, source in scaled.items() if source in scores}
        info["calibration"] = calibration_block(units, p, temperatures_of(model))
    model_info = {
        "base_rm": model.base_rm_info.get("name_or_path"),
        "refined_reward": reward,
        "method": streamed.method,
        "p_better": "posterior",
        **info.pop("model", {}),
    }
    return evaluate_scores(benchmark, units, scores, extra={"model": model_info, **info}, **options)


def _check_refined_reward(reward: str) -> None:
    if reward in REFERENCE_KINDS:
        raise ConfigError(
            f"The refined reward {reward!r} is a reference, not the energy head's reward; "
            "references are reported beside base and refined already: pick refined, mean, "
            "mode, median or conservative."
        )


def _restricted(p_better: PBetter | None, rows: np.ndarray) -> PBetter | None:
    """`p_better` over the original rows, called with rows of the compacted array."""
    if p_better is None:
        return None
    return lambda a, b: p_better(rows[a], rows[b])


def _unique(convs: Sequence[Conversation]) -> tuple[list[Conversation], np.ndarray]:
    """Unique conversations (first-seen order) and each input's row among them."""
    rows: dict[Conversation, int] = {}
    index = [rows.setdefault(conv, len(rows)) for conv in convs]
    return list(rows), np.asarray(index, dtype=np.int64)


def evaluate(
    model: TextRefiningModel,
    benchmark: str | Benchmark,
    data_spec: str | Path | Sequence[Any],
    out_dir: str | Path | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = DEFAULT_SEED,
    progress: bool = True,
    n_boot: int = DEFAULT_N_BOOT,
    limit: int | None = None,
    reward: RewardKind | str | None = None,
    make_figures: bool = True,
    data_name: str | None = None,
    kind: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any]:
    """Score a benchmark once and report base vs refined.

    Args:
        model: an `EnergyRewardModel` (any `TextRefiningModel`).
        benchmark: "pairwise", "rm-bench" or "reward-bench" (or a `Benchmark`).
        data_spec: a data spec for the benchmark's loader, or its loaded rows.
        out_dir: report folder (metrics.json, report.md, examples-*.jsonl, PNGs); None
            computes only.
        batch_size: texts per base-RM forward pass.
        seed: bootstrap seed.
        progress: show a progress bar while embedding.
        n_boot: bootstrap replicates.
        limit: evaluate at most this many rows.
        data_name: what metrics.json records as the data when `data_spec` holds loaded rows.
        reward: which refined reward to evaluate (a `RewardKind`; default "refined").
        make_figures: write the PNG plots.
        kind: the deprecated name of `reward` (warns).
        chunk_rows: unique responses embedded and refined at a time (`stream_scores`):
            memory is bounded by it, not by the data; the results do not depend on it.

    Returns:
        The metrics.json object.

    Raises:
        ConfigError: unknown benchmark or reward kind.
        DataFormatError: unreadable data, or no rows in it.
    """
    bench = get_benchmark(benchmark)
    reward = resolve_reward(reward, kind, old_name="kind")
    if isinstance(data_spec, (str, Path)):
        rows, data_name = bench.load(str(data_spec), limit=limit), str(data_spec)
    else:
        rows, data_name = list(data_spec)[:limit], data_name or "<in-memory>"
    if not rows:
        raise DataFormatError(f"{data_name}: no {bench.name} rows to evaluate")
    _check_refined_reward(reward)
    convs, units = bench.responses(rows)
    unique, index = _unique(convs)
    logger.info("scoring %d unique responses of %d %s rows", len(unique), len(rows), bench.name)
    del convs, rows  # the unique conversations are all that is read from here on
    used, compact = _compact(units.remap(index), len(unique))

    def fetch(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        part = [unique[r] for r in used[start:stop].tolist()]
        return model.base_rm.embed_conversations(part, batch_size=batch_size, progress=False)

    # what the embeddings and base rewards were computed with (they do not depend on the
    # batch size or padding side; recorded so that a reader can compare like with like)
    settings = computed_with(model.base_rm, batch_size=batch_size)
    result = _evaluate_chunked(
        model, bench, compact, fetch, reward=reward, method=None, more={},
        progress=progress, chunk_rows=chunk_rows, data=data_name, out_dir=out_dir,
        n_boot=n_boot, seed=seed, make_figures=make_figures,
        extra={"computed_with": settings},
    )  # fmt: skip
    return result.metrics
