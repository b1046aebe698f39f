"""The README.md model card of a refined-model directory, rendered from its config."""

from __future__ import annotations

import math
from typing import Any

# keys of train_info["validation"] the verdict line reads (written by the trainer)
BASE_ACCURACY_KEYS = ("base_accuracy", "accuracy_base", "base")
REFINED_ACCURACY_KEYS = ("refined_accuracy", "accuracy_refined", "refined")
_LIST_SHOWN = 8  # longer lists are summarised by their length


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        if len(value) > _LIST_SHOWN:  # e.g. the hashes of the prompts trained on
            return f"{len(value)} values (see config.json)"
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _table(data: dict) -> list[str]:
    rows = ["| key | value |", "| --- | --- |"]
    for key in sorted(data):
        value = data[key]
        if isinstance(value, dict):
            value = "; ".join(f"{k}={_fmt(v)}" for k, v in sorted(value.items()))
        rows.append(f"| {key} | {_fmt(value)} |".replace("\n", " "))
    return rows


def _first(data: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, dict) and isinstance(value.get("accuracy"), (int, float)):
            return float(value["accuracy"])
    return None


def verdict(train_info: dict) -> str:
    """One sentence: did refinement help on the validation split (from train_info)?"""
    if isinstance(train_info.get("verdict"), str):
        return train_info["verdict"]
    validation = train_info.get("validation")
    if not isinstance(validation, dict):
        return "No validation numbers were recorded, so it is unknown whether refinement helps."
    base, refined = (
        _first(validation, BASE_ACCURACY_KEYS),
        _first(validation, REFINED_ACCURACY_KEYS),
    )
    if base is None or refined is None:
        return "Validation numbers are recorded below; no base-vs-refined accuracy was found."
    # no interval was recorded: report the numbers, never a verdict from a point estimate
    return (
        f"Validation pairwise accuracy {refined:.4f} refined vs {base:.4f} base "
        f"({(refined - base) * 100:+.2f} points); no paired interval was recorded, so this is "
        "no evidence either way (`ebrm eval` on held-out data gives the verdict)."
    )


def _references(report: dict | None) -> list[str]:
    """The references section: what the energy head should be compared with, and how."""
    if not report:
        return [
            "No reference rewards are stored with this model (trained before `ebrm train` "
            "fitted them); its calibration and uncertainty have nothing to be judged against.",
        ]
    lines = [
        "Fitted on the same training and validation pairs as the energy head, so that "
        "`ebrm eval` can judge it like for like: the base RM's sigmoid with its own "
        "temperature (`base-calibrated`), a last-layer Laplace posterior of a Bradley-Terry "
        "head (`laplace`) and a bootstrap ensemble of BT heads (`ensemble`). Every "
        "P(chosen > rejected) compared is temperature-scaled on the validation pairs. "
        "Files: `references.safetensors`, `references.json`.",
        "",
    ]
    rows = {}
    for name in ("base", "laplace", "ensemble"):
        entry = report.get(name) or {}
        rows[name] = {k: entry[k] for k in ("temperature", "prior_precision", "size") if k in entry}
    return lines + _table(rows)


def render_model_card(config: dict, references: dict | None = None) -> str:
    """Markdown model card for a refined-model `config.json` dict (and, when the model
    stores them, its references' fit report)."""
    base = config.get("base_rm") or {}
    train = config.get("train") or {}
    refine = config.get("refine") or {}
    lines = [
        "---",
        "library_name: ebrm",
        "tags: [reward-model, energy-based-model, ebrm]",
        "---",
        "",
        "# Energy-based refined reward model",
        "",
        "An energy head f(e, y) over the embeddings of a frozen base reward model, trained with "
        "NCE+ as in *Energy-Based Reward Models for Robust Language Model Alignment* "
        "(Lochab & Zhang, 2025). Load it with "
        "`ebrm.model.EnergyRewardModel.from_pretrained(path)`.",
        "",
        "## Verdict",
        "",
        verdict(train),
        "",
        "## Base reward model",
        "",
        *_table(base),
        "",
        "## Energy head",
        "",
        *_table(config.get("head") or {}),
        "",
        "## Reward normaliser",
        "",
        *_table(config.get("normalizer") or {}),
        "",
        "## Refinement",
        "",
        f"The reported refined reward is `{refine.get('method', 'mean')}`.",
        "",
        *_table(refine),
        "",
        "## References (what to compare it with)",
        "",
        *_references(references),
        "",
        "## Training",
        "",
    ]
    scalars = {k: v for k, v in train.items() if not isinstance(v, (dict, list))}
    lines += _table(scalars) if scalars else ["No training information was recorded."]
    for key in sorted(k for k, v in train.items() if isinstance(v, dict)):
        lines += ["", f"### {key}", "", *_table(train[key])]
    versions = config.get("versions") or {}
    lines += ["", "## Versions", "", *_table(versions), ""]
    return "\n".join(lines)
