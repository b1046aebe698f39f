"""A device this machine does not have is a user error (ConfigError, exit 2), not a
traceback from deep inside torch."""

from __future__ import annotations

import pytest
import torch

from ebrm._device import resolve_device
from ebrm.cli import main
from ebrm.errors import ConfigError

UNAVAILABLE = ["meta"] + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"])
UNAVAILABLE += [f"cuda:{torch.cuda.device_count() + 3}"]


@pytest.mark.parametrize("device", UNAVAILABLE)
def test_unavailable_device_is_a_config_error(device):
    with pytest.raises(ConfigError, match=f"{device!r}"):
        resolve_device(device)


def test_available_devices_resolve():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")


@pytest.mark.parametrize("device", UNAVAILABLE)
def test_extract_on_an_unavailable_device_exits_2(tmp_path, tiny_rm_dir, device, capsys):
    from tests.reliability.conftest import write_pairs

    data = write_pairs(tmp_path / "pairs.jsonl", 3)
    argv = ["extract", "--rm", tiny_rm_dir, "--data", data, "--out", tmp_path / "o"]
    assert main([str(a) for a in [*argv, "--device", device]]) == 2
    assert "device" in capsys.readouterr().err.lower()
