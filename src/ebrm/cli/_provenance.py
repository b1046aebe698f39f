"""Inputs made by one base RM used together: refuse a mismatch naming both values."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ebrm._io import read_json_object
from ebrm._provenance import EMBEDDING_SETTINGS, provenance_differences
from ebrm.errors import ConfigError, IncompatibleArtifactError
from ebrm.features.names import MANIFEST_NAME
from ebrm.model.names import CONFIG_NAME

# what must agree for embeddings to be comparable here: every embedding setting but the
# compute dtype
_FIELDS = tuple(field for field in EMBEDDING_SETTINGS if field[1] != "dtype")


def check_same_base_rm(
    a: Mapping[str, Any], a_name: str, b: Mapping[str, Any], b_name: str, *, fix: str
) -> None:
    """`a` and `b` (base-RM provenance dicts) describe the same RM and extraction settings.

    A field recorded on only one side is not compared (older artifacts lack some).

    Raises:
        IncompatibleArtifactError: one line naming every differing field with both values
            and `fix`.
    """
    differ = provenance_differences(a, b, fields=_FIELDS, missing_differs=False)
    if differ:
        raise IncompatibleArtifactError(
            f"{a_name} and {b_name} come from different base RMs or settings "
            f"({'; '.join(differ)}); {fix}"
        )


def recorded_base_rm(model: Path) -> dict[str, Any]:
    """The base-RM provenance a refined-model directory records (config.json `base_rm`)."""
    info = read_json_object(Path(model) / CONFIG_NAME).get("base_rm")
    return dict(info) if isinstance(info, dict) else {}


def store_base_rm(store: Path) -> dict[str, Any]:
    """The base-RM provenance a feature store records (manifest.json `base_rm`, with the
    manifest's own max_length and truncation_side where the provenance lacks them)."""
    manifest = read_json_object(Path(store) / MANIFEST_NAME)
    info = manifest.get("base_rm")
    info = dict(info) if isinstance(info, dict) else {}
    for key in ("max_length", "truncation_side"):
        if info.get(key) is None and manifest.get(key) is not None:
            info[key] = manifest[key]
    return info


# (flag, provenance key, what): the extraction settings a command may state explicitly
_SETTINGS = (
    ("--max-length", "max_length", "max length"),
    ("--truncation-side", "truncation_side", "truncation side"),
)


def check_settings(info: Mapping[str, Any], model_name: str, **given: Any) -> None:
    """Explicit --max-length / --truncation-side equal what the model's features were made
    with (`info`, its recorded base-RM provenance); None (not given) always passes.

    Raises:
        ConfigError: one line naming the flag, both values and the fix.
    """
    for flag, key, what in _SETTINGS:
        value, recorded = given.get(key), info.get(key)
        if value is not None and recorded is not None and str(value) != str(recorded):
            raise ConfigError(
                f"{flag} {value} differs from the {what} {recorded} that {model_name}'s "
                f"features were made with (config.json base_rm.{key}), so its energy head "
                f"never saw texts embedded that way; drop {flag} (the model's {recorded} is "
                f"used), or train a model on features extracted with {flag} {value}."
            )
