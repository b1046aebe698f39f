"""Big-model loading (`device_map`): an RM split across devices, CPU and disk gives the
same embeddings, rewards and weights hash as the same RM loaded on one device."""

from __future__ import annotations

import pytest
import torch

from ebrm.errors import ConfigError
from ebrm.rm import BaseRewardModel
from ebrm.rm.hf import _hash_state_dict, _state_dict

TEXTS = [
    "short one",
    "a considerably longer text that keeps going about reward models and their heads " * 3,
    "x",
    "a medium length response about energy based models",
    "another text, of yet another length, to make batches uneven",
]

# every kind of placement in one model: CPU, disk (read back per forward) and the score
# head itself offloaded to disk
LLAMA_MAP = {
    "model.embed_tokens": "cpu",
    "model.layers.0": "disk",
    "model.layers.1": "cpu",
    "model.norm": "disk",
    "model.rotary_emb": "cpu",
    "score": "disk",
}


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def _assert_same_as_one_device(mapped: BaseRewardModel, single: BaseRewardModel) -> None:
    emb, rew = mapped.embed_texts(TEXTS, batch_size=2)
    emb1, rew1 = single.embed_texts(TEXTS, batch_size=2)
    assert emb.device.type == rew.device.type == "cpu"
    assert _max_diff(emb, emb1) <= 1e-5
    assert _max_diff(rew, rew1) <= 1e-5
    # the RM's own head on the embedding, read back from disk, is the model's reward
    assert _max_diff(mapped.head_reward(emb), rew1) <= 1e-5
    assert mapped.weights_hash == single.weights_hash
    assert mapped.provenance() == single.provenance()


def test_layers_on_cpu_and_disk_equal_one_device(tiny_rm_factory, tmp_path):
    path = tiny_rm_factory("llama")
    single = BaseRewardModel.from_pretrained(path, device="cpu")
    mapped = BaseRewardModel.from_pretrained(
        path, device_map=LLAMA_MAP, offload_folder=tmp_path / "offload"
    )
    assert set(mapped.model.hf_device_map.values()) == {"cpu", "disk"}
    assert mapped.model.score.weight.device.type == "meta"  # really offloaded
    assert mapped.device == torch.device("cpu")
    _assert_same_as_one_device(mapped, single)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "bert"])
def test_auto_map_with_no_memory_offloads_everything_to_disk(tiny_rm_factory, tmp_path, arch):
    path = tiny_rm_factory(arch)
    single = BaseRewardModel.from_pretrained(path, device="cpu")
    mapped = BaseRewardModel.from_pretrained(
        path, device_map="auto", max_memory={"cpu": 1}, offload_folder=tmp_path / "offload"
    )
    assert set(mapped.model.hf_device_map.values()) == {"disk"}
    _assert_same_as_one_device(mapped, single)


def test_state_dict_hash_reads_offloaded_weights(tiny_rm_factory, tmp_path):
    """The fallback hash (no safetensors files) sees the offloaded tensors, not meta ones."""
    path = tiny_rm_factory("llama")
    single = BaseRewardModel.from_pretrained(path, device="cpu")
    mapped = BaseRewardModel.from_pretrained(
        path, device_map=LLAMA_MAP, offload_folder=tmp_path / "offload"
    )
    expected = _hash_state_dict(single.model.state_dict())
    assert _hash_state_dict(_state_dict(mapped.model)) == expected


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"device": "cpu", "device_map": "auto"}, "contradict"),
        ({"device_map": "everywhere"}, "not one of auto"),
        ({"offload_folder": "x"}, "only apply with a device map"),
        ({"max_memory": {"cpu": "1GiB"}}, "only apply with a device map"),
    ],
)
def test_bad_placement_options(tiny_rm_factory, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        BaseRewardModel.from_pretrained(tiny_rm_factory("llama"), **kwargs)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_and_cpu_split_equals_one_device(tiny_rm_factory, tmp_path):
    """Embedding and first layer on the GPU, the rest offloaded to CPU (fp32)."""
    path = tiny_rm_factory("llama")
    single = BaseRewardModel.from_pretrained(path, device="cpu")
    split = {**LLAMA_MAP, "model.embed_tokens": 0, "model.layers.0": 0, "model.norm": "cpu"}
    split["score"] = "cpu"
    mapped = BaseRewardModel.from_pretrained(path, device_map=split)
    assert mapped.device.type == "cuda"
    _assert_same_as_one_device(mapped, single)
