"""The refined-model directory (DESIGN §3 [contract]): config.json, energy_head.safetensors,
README.md and the references, written atomically and read back with every file checked.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ebrm._device import resolve_device
from ebrm._io import atomic_write_text, recover_replaced_directory, sha256_file
from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead
from ebrm.errors import ConfigError, CorruptArtifactError, IncompatibleArtifactError
from ebrm.model.names import CARD_NAME, CONFIG_NAME, FORMAT_NAME, WEIGHTS_NAME
from ebrm.references import load_references, save_references
from ebrm.references.io import META_NAME as REFERENCES_META
from ebrm.references.io import TENSORS_NAME as REFERENCES_TENSORS
from ebrm.refine.config import RefineConfig

if TYPE_CHECKING:
    import torch

    from ebrm.model.refined import EnergyRewardModel

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_KNOWN_KEYS = {"format", "format_version", "versions", "head", "normalizer", "refine"}
_KNOWN_KEYS |= {"base_rm", "train", "weights_sha256"}


def config_dict(model: EnergyRewardModel) -> dict:
    """The JSON-serialisable content of config.json."""
    from ebrm._version import version_info

    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": version_info(),
        "head": model.head.config.to_dict(),
        "normalizer": model.normalizer.to_dict(),
        "refine": model.refine_config.to_dict(),
        "base_rm": model.base_rm_info,
        "train": model.train_info,
    }
    return _jsonable(config, "config")


def save_pretrained(model: EnergyRewardModel, directory: str | os.PathLike) -> Path:
    """Write the refined-model directory atomically (`EnergyRewardModel.save_pretrained`)."""
    from ebrm.refine.card import render_model_card
    from ebrm.refine.io import replace_directory, save_weights

    config = config_dict(model)  # validated before anything is written
    config["base_rm"] = _with_relative_path(config.get("base_rm") or {}, Path(directory))
    json.dumps(config, allow_nan=False)  # fail on NaN before anything is written

    def build(tmp: Path) -> None:
        save_weights(model.head, tmp / WEIGHTS_NAME)
        # the checksum lets from_pretrained detect a damaged weight file, which would
        # otherwise load as plausible finite weights
        with_checksum = {**config, "weights_sha256": sha256_file(tmp / WEIGHTS_NAME)}
        text = json.dumps(with_checksum, indent=2, sort_keys=True, allow_nan=False) + "\n"
        atomic_write_text(tmp / CONFIG_NAME, text)
        report = None if model.references is None else model.references.report
        atomic_write_text(tmp / CARD_NAME, render_model_card(config, report))
        if model.references is not None:
            save_references(tmp, model.references)

    ours = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, REFERENCES_META, REFERENCES_TENSORS)
    return replace_directory(directory, build, ours=ours)


def load_pretrained(
    cls: type[EnergyRewardModel],
    directory: str | os.PathLike,
    device: str | torch.device | None,
    base_rm: Any,
) -> EnergyRewardModel:
    """`cls` read from a refined-model directory: `EnergyRewardModel.from_pretrained`,
    which documents the arguments and errors."""
    from ebrm.energy.normalize import RewardNormalizer
    from ebrm.refine.io import load_weights, read_config

    directory = Path(directory)
    recover_replaced_directory(directory)  # a save killed between its two renames
    if not directory.is_dir():
        raise ConfigError(
            f"No refined-model directory at {directory}; pass the --out of `ebrm train`"
        )
    config_path = directory / CONFIG_NAME
    config = read_config(config_path)
    if config.get("format") != FORMAT_NAME:
        raise IncompatibleArtifactError(
            f"{config_path} is not an ebrm refined-model config (format "
            f"{config.get('format')!r}, expected {FORMAT_NAME!r}); pass the directory "
            "written by `ebrm train` or save_pretrained, not the base RM's"
        )
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise IncompatibleArtifactError(
            f"{config_path} has format version {config['format_version']} but this ebrm "
            f"reads up to {FORMAT_VERSION}; upgrade ebrm"
        )
    unknown = sorted(set(config) - _KNOWN_KEYS)
    if unknown:
        logger.warning("ignoring unknown keys in %s: %s", config_path, unknown)
    try:
        head = EnergyHead(EnergyHeadConfig.from_dict(config["head"]))
        normalizer = RewardNormalizer.from_dict(config["normalizer"])
        refine_config = RefineConfig.from_dict(config.get("refine") or {})
    except (KeyError, TypeError, ConfigError) as exc:
        raise CorruptArtifactError(f"{config_path} is invalid: {exc}") from exc
    weights_path = directory / WEIGHTS_NAME
    expected = config.get("weights_sha256")
    if expected is not None and weights_path.is_file() and sha256_file(weights_path) != expected:
        raise CorruptArtifactError(
            f"{weights_path} fails its checksum (config.json records sha256 {expected[:12]}…); "
            "the file is damaged: re-save or re-train the model"
        )
    load_weights(head, weights_path)
    head.to(resolve_device(device))
    return cls(
        head,
        normalizer,
        refine_config,
        _resolve_base_rm_path(config.get("base_rm") or {}, directory),
        config.get("train") or {},
        base_rm=base_rm,
        references=load_references(directory),
    )


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON types; tensors/numpy become lists or numbers, non-finite floats None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _jsonable(value.tolist(), where)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ConfigError(
        f"{where} holds a {type(value).__name__}, which cannot be written to config.json; "
        "store numbers, strings, lists or dicts"
    )


def _with_relative_path(info: dict, directory: Path) -> dict:
    """`info` plus `relative_path` (from the model directory) when the base RM is a local
    directory saved beside the model (e.g. runs/rm and runs/ebrm), so that moving both
    together keeps the model loadable."""
    path = info.get("name_or_path")
    if not path or not Path(path).is_dir():
        return info
    relative = os.path.relpath(Path(path).resolve(), Path(directory).resolve())
    if relative.startswith(os.path.join(os.pardir, os.pardir)):
        return info  # not beside the model: only the absolute path is meaningful
    return {**info, "relative_path": relative}


def _resolve_base_rm_path(info: dict, directory: Path) -> dict:
    """`info` with `name_or_path` pointing at the base RM beside the model when it is there
    (the recorded absolute path may have moved with the directories)."""
    relative = info.get("relative_path")
    if relative and (directory / relative / "config.json").is_file():
        return {**info, "name_or_path": str((directory / relative).resolve())}
    return info
