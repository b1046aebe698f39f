"""The references as plain parts, for the model directory to store (`ebrm.model.files`).

`to_parts` turns a `ReferenceSet` into tensors under `<name>.<tensor>` keys (float32 for
the covariance, float64 for the rest) and a JSON-ready dict of each reference's kind and
settings; `from_parts` is its inverse. No file is read or written here: the files
(`references.safetensors`, `references.json`), their format checks and checksums belong
to the refined-model directory's owner, `ebrm.model`.
"""

from __future__ import annotations

from typing import Any

import torch

from ebrm._io import json_finite
from ebrm.references.ensemble import EnsembleReference
from ebrm.references.fit import REFERENCE_NAMES, ReferenceSet
from ebrm.references.laplace import LaplaceReference
from ebrm.references.rewards import Reference

_KINDS = {"laplace": LaplaceReference, "ensemble": EnsembleReference}


def to_parts(refs: ReferenceSet) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, fields): `refs` as contiguous CPU tensors and JSON-ready fields.

    `fields` holds "references" ({name: {"kind", settings...}}), "base_temperature" and
    "report" (non-finite floats of the report become None: JSON has neither).

    Raises:
        ValueError: a reference of a kind that cannot be stored.
    """
    tensors: dict[str, torch.Tensor] = {}
    entries = {}
    for name, ref in refs.rewards.items():
        if ref.name not in _KINDS:
            raise ValueError(f"unknown reference kind {ref.name!r}; known: {sorted(_KINDS)}")
        for key, tensor in ref.tensors().items():
            dtype = torch.float32 if key == "covariance" else torch.float64
            tensors[f"{name}.{key}"] = tensor.detach().to("cpu", dtype).contiguous()
        entries[name] = {"kind": ref.name, **ref.meta()}
    fields = {
        "references": entries,
        "base_temperature": refs.base_temperature,
        "report": json_finite(refs.report),
    }
    return tensors, fields


def from_parts(tensors: dict[str, torch.Tensor], fields: dict[str, Any]) -> ReferenceSet:
    """The `ReferenceSet` that `to_parts` turned into (tensors, fields).

    Raises:
        ValueError: a reference is incomplete, of an unknown kind or invalid, or
            base_temperature is not a number (the message names which).
    """
    refs: dict[str, Reference] = {}
    entries = fields.get("references") or {}
    order = {name: i for i, name in enumerate(REFERENCE_NAMES)}  # JSON keys come sorted
    for name in sorted(entries, key=lambda n: (order.get(n, len(order)), n)):
        entry = entries[name]
        kind = _KINDS.get(entry.get("kind")) if isinstance(entry, dict) else None
        prefix = f"{name}."
        own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if kind is None or not own:
            raise ValueError(f"reference {name!r} is incomplete")
        try:
            refs[name] = kind.from_parts(own, entry)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"reference {name!r} is invalid: {exc}") from exc
    try:
        base_t = float(fields.get("base_temperature", 1.0))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"base_temperature is invalid: {exc}") from exc
    return ReferenceSet(refs, base_temperature=base_t, report=dict(fields.get("report") or {}))
