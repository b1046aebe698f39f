"""A refined model's verdict on its validation pairs, for the model card: the paired interval
and McNemar test, the same sentence `ebrm eval` prints (never a bare point estimate)."""

from __future__ import annotations

from typing import Any


def record_validation_verdict(model: Any, validation: Any, *, seed: int = 0) -> str | None:
    """Store `verdict` and `delta` (refined - base accuracy on `validation`, paired bootstrap
    interval, exact McNemar) in `model.train_info`; returns the sentence (None: no pairs)."""
    from ebrm.evaluation.metrics import paired_difference, verdict

    if validation is None or validation.num_pairs == 0:
        return None
    val = validation.compact()
    refined = model.refine(val.embeddings, val.rewards).reward
    base_right = (val.rewards[val.chosen] > val.rewards[val.rejected]).double()
    refined_right = (refined[val.chosen] > refined[val.rejected]).double()
    delta = paired_difference(base_right, refined_right, mcnemar=True, seed=seed)
    sentence = verdict(delta, unit="validation pairs")
    model.train_info["validation"] = {**model.train_info.get("validation", {}), "delta": delta}
    model.train_info["verdict"] = f"On the validation split: {sentence}"
    return sentence
