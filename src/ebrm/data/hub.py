"""Rows of a Hugging Face hub dataset given as ``hf:NAME[:CONFIG][:SPLIT]``.

``hf:NAME`` loads the dataset's only split (several splits: name one). To give a split but
no config, leave the config empty: ``hf:allenai/reward-bench::filtered``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

from ebrm.data._read import RawRow
from ebrm.errors import ConfigError, EbrmError

PREFIX = "hf:"


class HubSpec(NamedTuple):
    name: str
    config: str | None
    split: str | None


def parse_hub_spec(spec: str) -> HubSpec:
    """Split ``hf:NAME[:CONFIG][:SPLIT]``.

    Raises:
        ConfigError: empty name or more than three parts.
    """
    parts = spec[len(PREFIX) :].split(":")
    if not parts[0] or len(parts) > 3:
        raise ConfigError(
            f"Bad hub data spec {spec!r}: expected hf:NAME[:CONFIG][:SPLIT], "
            "e.g. hf:Anthropic/hh-rlhf::test."
        )
    parts += [""] * (3 - len(parts))
    return HubSpec(parts[0], parts[1] or None, parts[2] or None)


def iter_hub_rows(spec: str) -> Iterator[RawRow]:
    """Yield the rows of a hub dataset.

    Raises:
        EbrmError: the hub is unreachable / the dataset does not exist, or the split is
            ambiguous.
    """
    hub = parse_hub_spec(spec)
    import datasets

    try:
        loaded = datasets.load_dataset(hub.name, hub.config, split=hub.split)
    except Exception as exc:  # network, auth, missing dataset: all mean "cannot get it"
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise EbrmError(
            f"Could not load {spec!r} from the Hugging Face hub{offline}: "
            f"{type(exc).__name__}: {exc}. The hub is unreachable or the dataset/config/split "
            "does not exist. Pass a local file or directory instead (JSON, JSONL, JSONL.GZ, "
            "Parquet), e.g. --data path/to/pairs.jsonl."
        ) from exc
    split = hub.split
    if isinstance(loaded, datasets.DatasetDict):
        if len(loaded) != 1:
            raise ConfigError(
                f"{spec!r} has splits {sorted(loaded)}; name one, e.g. "
                f"hf:{hub.name}:{hub.config or ''}:{sorted(loaded)[0]}."
            )
        split, loaded = next(iter(loaded.items()))
    where = f"hf:{hub.name}" + (f" ({hub.config})" if hub.config else "") + f" split {split}"
    for index, row in enumerate(loaded):
        yield RawRow(f"{where}, row {index}", f"{hub.name}:{split}:{index}", row)
