"""The references on disk: `references.safetensors` + `references.json`, no pickle.

Both files sit in the refined-model directory beside `config.json`. Tensors are stored
under `<name>.<tensor>` keys (float32 for the covariance, float64 for the rest);
`references.json` holds each reference's kind and settings and the sha256 of the
tensor file, so a damaged file is refused rather than loaded as plausible numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ebrm._io import atomic_write, atomic_write_json, sha256_file
from ebrm.errors import CorruptArtifactError, IncompatibleArtifactError
from ebrm.references.ensemble import EnsembleReference
from ebrm.references.fit import REFERENCE_NAMES, ReferenceSet
from ebrm.references.laplace import LaplaceReference
from ebrm.references.rewards import Reference

TENSORS_NAME = "references.safetensors"
META_NAME = "references.json"
FORMAT_NAME = "ebrm-references"
FORMAT_VERSION = 1
_KINDS = {"laplace": LaplaceReference, "ensemble": EnsembleReference}


def save_references(directory: str | os.PathLike, refs: ReferenceSet) -> Path:
    """Write `refs` into `directory` (tensors first, then the JSON that names their hash)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    state: dict[str, torch.Tensor] = {}
    entries = {}
    for name, ref in refs.rewards.items():
        if ref.name not in _KINDS:
            raise ValueError(f"unknown reference kind {ref.name!r}; known: {sorted(_KINDS)}")
        for key, tensor in ref.tensors().items():
            dtype = torch.float32 if key == "covariance" else torch.float64
            state[f"{name}.{key}"] = tensor.detach().to("cpu", dtype).contiguous()
        entries[name] = {"kind": ref.name, **ref.meta()}
    tensors_path = directory / TENSORS_NAME
    atomic_write(tensors_path, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "references": entries,
        "base_temperature": refs.base_temperature,
        "report": refs.report,
        "tensors_sha256": sha256_file(tensors_path),
    }
    atomic_write_json(directory / META_NAME, meta)
    return directory


def load_references(directory: str | os.PathLike) -> ReferenceSet | None:
    """The references stored in `directory`; None when it has none (a model from before them).

    Raises:
        CorruptArtifactError: a file is missing, damaged or inconsistent (names it).
        IncompatibleArtifactError: written by a newer ebrm.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    meta_path, tensors_path = directory / META_NAME, directory / TENSORS_NAME
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArtifactError(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CorruptArtifactError(f"{meta_path} is not an ebrm references file; re-run ebrm train")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise IncompatibleArtifactError(
            f"{meta_path} has format version {meta['format_version']} but this ebrm reads up "
            f"to {FORMAT_VERSION}; upgrade ebrm"
        )
    if not tensors_path.is_file() or sha256_file(tensors_path) != meta.get("tensors_sha256"):
        raise CorruptArtifactError(
            f"{tensors_path} is missing or does not match the checksum in {meta_path}; "
            "re-run ebrm train to refit the references"
        )
    state = load_file(str(tensors_path))
    refs: dict[str, Reference] = {}
    entries = meta.get("references") or {}
    order = {name: i for i, name in enumerate(REFERENCE_NAMES)}  # JSON keys come sorted
    for name in sorted(entries, key=lambda n: (order.get(n, len(order)), n)):
        entry = entries[name]
        kind = _KINDS.get(entry.get("kind"))
        prefix = f"{name}."
        tensors = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if kind is None or not tensors:
            raise CorruptArtifactError(f"{meta_path}: reference {name!r} is incomplete")
        try:
            refs[name] = kind.from_parts(tensors, entry)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptArtifactError(
                f"{meta_path}: reference {name!r} is invalid: {exc}"
            ) from exc
    try:
        base_t = float(meta.get("base_temperature", 1.0))
    except (TypeError, ValueError) as exc:
        raise CorruptArtifactError(f"{meta_path}: base_temperature is invalid: {exc}") from exc
    return ReferenceSet(refs, base_temperature=base_t, report=dict(meta.get("report") or {}))
