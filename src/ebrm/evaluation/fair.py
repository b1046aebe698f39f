"""Like for like: the rewards a user would pick instead of the energy head, beside it.

A refined model trained by `ebrm train` stores its references (`ebrm.references`): the
base RM's sigmoid with its own temperature ("base-calibrated"), a Laplace posterior of a
Bradley-Terry head ("laplace") and a bootstrap ensemble of BT heads ("ensemble"), all
fitted on the energy head's own training and validation pairs. Here they become
evaluation `Reward`s over the same responses, and every probability is reported raw and
temperature-scaled (`calibration_block`), so calibration is compared scaled with scaled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ebrm.evaluation.calibration import brier_score, expected_calibration_error
from ebrm.evaluation.selective import probability_confidence, risk_coverage
from ebrm.evaluation.uncertainty import axis_verdicts, compare_rewards, nll, strip_replicates
from ebrm.evaluation.units import PBetter, Reward, Units
from ebrm.references import ReferenceSet, base_p_better, reference_rewards

BASE_CALIBRATED = "base-calibrated"
#: the rewards the energy head is judged against, in report order
REFERENCE_REWARDS = (BASE_CALIBRATED, "laplace", "ensemble")


def _p_of(fn) -> PBetter:
    """A PBetter from a function of (P,) row index tensors returning (P,) probabilities."""

    def p_better(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a_t, b_t = torch.as_tensor(a, dtype=torch.long), torch.as_tensor(b, dtype=torch.long)
        return fn(a_t, b_t).detach().cpu().double().clamp(0, 1).numpy()

    return p_better


def reference_rewards_of(
    references: ReferenceSet,
    embeddings: torch.Tensor,
    raw_rewards: torch.Tensor,
    base_values: np.ndarray,
    *,
    k: float,
    reward: str = "refined",
) -> dict[str, Reward]:
    """The references as evaluation rewards over the rows of `embeddings`.

    Args:
        references: the model's `ReferenceSet`.
        embeddings, raw_rewards: (N, D) and (N,) base-RM features of the responses.
        base_values: (N,) the "base" reward's values (the calibrated base ranks the same).
        k: the conservative reward's k (the energy head's `conservative_k`).
        reward: "conservative" (the energy model's `mean - k*spread`) scores each reference
            by its own lower bound `mean - k*std` (its `_lcb` kind); otherwise by its mean.
    """
    raw = torch.as_tensor(raw_rewards).detach().cpu().double()
    t = references.base_temperature
    out = {
        BASE_CALIBRATED: Reward.of(
            base_values, _p_of(lambda a, b: base_p_better(raw[a], raw[b], t))
        )
    }
    emb = torch.as_tensor(embeddings).detach().cpu()
    for name, ref in references.rewards.items():
        scored = reference_rewards(ref, emb, k=k)
        values = scored.lcb if reward == "conservative" else scored.mean
        out[name] = Reward.of(
            values.double(), _p_of(lambda a, b, r=ref: r.p_better(emb[a], emb[b]))
        )
    return out


def raw_probability(p: np.ndarray, temperature: float) -> np.ndarray:
    """Undo `temperature_scale`: sigmoid(T logit(p)); p clipped to [1e-6, 1 - 1e-6] first,
    as the temperature fit clips it."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return 1.0 / (1.0 + np.exp(-temperature * (np.log(p) - np.log1p(-p))))


def _three(p: np.ndarray) -> dict[str, float]:
    return {"ece": expected_calibration_error(p), "brier": brier_score(p), "nll": nll(p)}


def calibration_block(
    units: Units,
    p_scaled: Mapping[str, np.ndarray],
    temperatures: Mapping[str, float],
) -> dict[str, Any]:
    """ECE, Brier and NLL of P(chosen > rejected), raw and temperature-scaled, per reward.

    Args:
        units: pairwise units (only their count is checked).
        p_scaled: reward -> (U,) its temperature-scaled P(chosen > rejected).
        temperatures: reward -> the temperature that scaled it (1 = none fitted).

    Returns:
        {reward: {"temperature", "raw": {"ece", "brier", "nll"}, "scaled": {...}}}.
    """
    out = {}
    for name, p in p_scaled.items():
        p = np.asarray(p, dtype=np.float64)
        if p.shape != (len(units),):
            raise ValueError(f"{name}: {p.shape[0]} probabilities for {len(units)} units")
        t = float(temperatures.get(name, 1.0))
        out[name] = {
            "temperature": t,
            "raw": _three(raw_probability(p, t) if t != 1.0 else p),
            "scaled": _three(p),
        }
    return out


_AXIS_LABELS = {
    "accuracy": ("accuracy", "pts"),
    "nll": ("NLL of P(chosen > rejected)", ""),
    "ece": ("ECE", ""),
    "brier": ("Brier", ""),
    "selective_accuracy_50": ("selective accuracy at 50% coverage", "pts"),
    "selective_accuracy_80": ("selective accuracy at 80% coverage", "pts"),
    "aurc": ("area under the risk-coverage curve", ""),
}
RISK_COVERAGE_POINTS = tuple(round(0.05 * i, 2) for i in range(1, 21))


def _fmt(axis: str, value: float, signed: bool = False) -> str:
    if _AXIS_LABELS[axis][1] == "pts":
        return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}%"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def verdict_sentences(verdicts: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[str]:
    """One sentence per axis: the best reward, and the energy head against the best reference."""
    lines = []
    for axis, v in verdicts.items():
        label, unit = _AXIS_LABELS[axis]
        text = f"{label}: best {v['best']} ({_fmt(axis, metrics[v['best']][axis])})"
        d = v.get("candidate_vs_best_reference")
        if d is not None:
            lo, hi = d["ci95"]
            text += (
                f"; refined - {v['best_reference']} = {_fmt(axis, d['delta'], True)}"
                f"{' pts' if unit else ''} (95% CI {_fmt(axis, lo, True)} to "
                f"{_fmt(axis, hi, True)}): "
                + {"better": "the energy head is better", "worse": "the energy head is worse"}.get(
                    d["outcome"], "no detectable difference"
                )
            )
        lines.append(text + ".")
    return lines


def uncertainty_block(
    p_and_correct: Mapping[str, tuple[np.ndarray, np.ndarray]], *, n_boot: int, seed: int
) -> dict[str, Any]:
    """The pairwise comparison of every reward with a P(chosen > rejected), scaled with scaled.

    The raw base sigmoid is left out when its calibrated twin is there; the baseline of
    the paired differences is the calibrated base (else the base), and the energy head is
    judged against the best of the references on each axis.

    Args:
        p_and_correct: reward -> ((U,) correct, (U,) P(chosen > rejected)).

    Returns:
        {"baseline", "rewards", "metrics", "vs_baseline", "verdicts", "sentences",
        "risk_coverage": {"coverage": [...], reward: [risk, ...]}, "n", "n_boot", "level"}.
    """
    rewards = dict(p_and_correct)
    baseline = "base"
    if BASE_CALIBRATED in rewards:
        rewards.pop("base", None)
        baseline = BASE_CALIBRATED
    comparison = compare_rewards(rewards, baseline=baseline, n_boot=n_boot, seed=seed)
    references = [n for n in REFERENCE_REWARDS if n in rewards] or [baseline]
    verdicts = axis_verdicts(comparison, candidate="refined", references=references)
    curves: dict[str, list] = {"coverage": list(RISK_COVERAGE_POINTS)}
    for name, (correct, p) in rewards.items():
        coverage, risk = risk_coverage(correct, probability_confidence(p))
        curves[name] = [float(np.interp(c, coverage, risk)) for c in RISK_COVERAGE_POINTS]
    out = strip_replicates(comparison)
    out.update(
        rewards=list(rewards),
        verdicts=verdicts,
        sentences=verdict_sentences(verdicts, comparison["metrics"]),
        risk_coverage=curves,
    )
    return out
