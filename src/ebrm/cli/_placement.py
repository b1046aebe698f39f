"""Where a command puts the base RM: one device (`--device`), or split by accelerate's
big-model loading (`--device-map auto`, `--max-memory`, `--offload-folder`) for an RM larger
than one device. Shared by the commands that load an RM (extract, eval, bon, serve)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from ebrm.errors import ConfigError
from ebrm.rm.names import DeviceMapName

DeviceMap = Annotated[
    DeviceMapName | None,
    typer.Option(
        "--device-map",
        help="Split the base RM across the GPUs, then CPU, then disk (accelerate's big-model "
        "loading), for an RM larger than one device; leave --device unset. Embeddings and "
        "rewards equal one-device loading.",
    ),
]
MaxMemory = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        help="With --device-map: memory each device may hold, e.g. 0=70GiB,1=70GiB,cpu=200GiB "
        "(default: what is free).",
    ),
]
OffloadFolder = Annotated[
    Path | None,
    typer.Option(
        "--offload-folder",
        help="With --device-map: where layers that fit on no device are written (needed when "
        "the RM's weights are not safetensors and some go to disk).",
    ),
]

_MEMORY_ITEM = re.compile(r"(\d+|cpu|disk|mps|xpu:\d+|npu:\d+)=(\d+(\.\d+)?\s*([KMGT]i?B)?)", re.I)


def placement(
    *,
    device: str | None,
    device_map: str | None,
    max_memory: str | None,
    offload_folder: Path | None,
) -> dict:
    """The RM loader's placement keywords from the flags, checked before any heavy import.

    Returns:
        {} without --device-map, else device_map / max_memory / offload_folder.

    Raises:
        ConfigError: one line naming the flag and the fix.
    """
    if device_map is None:
        for flag, value in (("--max-memory", max_memory), ("--offload-folder", offload_folder)):
            if value is not None:
                raise ConfigError(f"{flag} applies only with --device-map; add --device-map auto.")
        return {}
    if device is not None:
        raise ConfigError(
            f"--device {device} and --device-map {device_map} contradict each other: the device "
            "map places the RM's layers itself. Pass one of them."
        )
    options: dict = {"device_map": device_map}
    if max_memory is not None:
        options["max_memory"] = parse_max_memory(max_memory)
    if offload_folder is not None:
        if offload_folder.exists() and not offload_folder.is_dir():
            raise ConfigError(
                f"--offload-folder {offload_folder} is a file; give a directory (created if "
                "missing)."
            )
        options["offload_folder"] = str(offload_folder)
    return options


def parse_max_memory(text: str) -> dict[int | str, int | str]:
    """'0=20GiB,cpu=60GiB' -> {0: '20GiB', 'cpu': '60GiB'} (GPU indices as ints, as
    accelerate expects them)."""
    memory: dict[int | str, int | str] = {}
    for item in (part.strip() for part in text.split(",")):
        match = _MEMORY_ITEM.fullmatch(item)
        if match is None:
            raise ConfigError(
                f"--max-memory {text!r}: cannot read {item!r}; write DEVICE=SIZE pairs separated "
                "by commas, e.g. 0=20GiB,1=20GiB,cpu=60GiB."
            )
        key, size = match.group(1).lower(), match.group(2).replace(" ", "")
        memory[int(key) if key.isdigit() else key] = size if match.group(4) else int(float(size))
    return memory
