"""The CUDA paths, each checked against the same computation on the CPU (`pytest -m cuda`).

They skip without a GPU. `benchmarks/gpu_check.sh` runs them on a GPU machine;
EBRM_TEST_DEVICE=cpu runs the same comparisons CPU against CPU (to check the tests).
"""

from __future__ import annotations

import os

import pytest
import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead
from ebrm.energy.normalize import RewardNormalizer
from ebrm.energy.objectives import NCEPlus, PairBatch
from ebrm.features import extract_features
from ebrm.features.store import FeatureStore
from ebrm.model import EnergyRewardModel
from ebrm.refine import RefineConfig, grid_posterior, paper_refine
from ebrm.rm import BaseRewardModel
from tests.refine.conftest import synthetic_features, train_tiny_head

DEVICE = os.environ.get("EBRM_TEST_DEVICE", "cuda")
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        DEVICE.startswith("cuda") and not torch.cuda.is_available(), reason="needs a CUDA GPU"
    ),
]


def _convs(n: int) -> list[Conversation]:
    return [
        Conversation.from_prompt(f"Question {i}: what is {i} + {i}?", "Answer. " * (1 + i % 7))
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def head() -> EnergyHead:
    return train_tiny_head(steps=100)


def test_grid_posterior_on_the_device_matches_the_cpu(head):
    emb, _ = synthetic_features(200, 16, seed=21)
    cpu = grid_posterior(head, emb)
    on_device = grid_posterior(head.to(DEVICE), emb)
    head.cpu()
    for name in ("mean", "std", "q05", "q50", "q95", "log_z", "mode"):
        assert getattr(on_device, name).device.type == "cpu"  # results come back to the CPU
        torch.testing.assert_close(getattr(on_device, name), getattr(cpu, name), atol=1e-3, rtol=0)
    low = grid_posterior(head.to(DEVICE), emb, compute_dtype="bfloat16")
    head.cpu()
    assert (low.mean - cpu.mean).abs().max() < 0.05  # bf16 perturbs f by ~1e-2


def test_paper_refine_on_the_device_matches_the_cpu(head):
    emb, y = synthetic_features(64, 16, seed=22)
    cpu = paper_refine(head, emb, y, generator=torch.Generator().manual_seed(0))
    on_device = paper_refine(
        head.to(DEVICE), emb.to(DEVICE), y, generator=torch.Generator().manual_seed(0)
    )
    head.cpu()
    torch.testing.assert_close(on_device.cpu(), cpu, atol=1e-3, rtol=0)


def test_nce_training_loss_and_gradients_on_the_device_match_the_cpu():
    torch.manual_seed(0)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=16, joint_widths=(64, 32))).eval()
    emb, y = synthetic_features(32, 16, seed=23)
    pairs = PairBatch(emb[:16], emb[16:], y[:16], y[16:], torch.ones(16, dtype=torch.bool))
    objective = NCEPlus(noise_std=3.5, positive_noise_ratio=0.1, num_negatives=64, reg_weight=0.05)

    def loss_and_grad(module, batch):
        module.zero_grad()
        loss = objective(module, batch, generator=torch.Generator().manual_seed(1)).loss
        loss.backward()
        return float(loss), module.joint_in_embedding.weight.grad.detach().cpu().clone()

    cpu_loss, cpu_grad = loss_and_grad(head, pairs)
    moved = PairBatch(*(t.to(DEVICE) for t in (emb[:16], emb[16:], y[:16], y[16:], pairs.kept)))
    dev_loss, dev_grad = loss_and_grad(head.to(DEVICE), moved)
    assert dev_loss == pytest.approx(cpu_loss, rel=1e-4)
    torch.testing.assert_close(dev_grad, cpu_grad, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_base_rm_on_the_device_matches_the_cpu(tiny_rm_dir, dtype):
    convs = _convs(12)
    cpu = BaseRewardModel.from_pretrained(tiny_rm_dir, device="cpu")
    rm = BaseRewardModel.from_pretrained(tiny_rm_dir, device=DEVICE, dtype=dtype)
    emb_cpu, rew_cpu = cpu.embed_conversations(convs, batch_size=4)
    emb, rew = rm.embed_conversations(convs, batch_size=4)  # checks head(pooled) == logits
    tol = 1e-4 if dtype == "float32" else 5e-2  # bf16 keeps 8 mantissa bits
    scale = 1 + emb_cpu.abs().max()
    torch.testing.assert_close(emb, emb_cpu, atol=tol * scale, rtol=tol)
    torch.testing.assert_close(rew, rew_cpu, atol=tol * (1 + rew_cpu.abs().max()), rtol=tol)


def test_scoring_and_extraction_on_the_device_match_the_cpu(tiny_rm_dir, tmp_path, head):
    del head  # a 32-dim tiny RM needs its own head
    torch.manual_seed(1)
    energy = EnergyHead(EnergyHeadConfig(embedding_dim=32, joint_widths=(64, 32))).eval()
    rm = BaseRewardModel.from_pretrained(tiny_rm_dir, device="cpu")
    convs = _convs(10)
    _, rewards = rm.embed_conversations(convs)
    normalizer = RewardNormalizer(scale=4.0).fit(rewards)
    model = EnergyRewardModel(energy, normalizer, RefineConfig(), rm.provenance(), {})
    model.attach_base_rm(rm)
    cpu = model.score(convs)
    on_device = model.to(DEVICE)
    on_device.attach_base_rm(BaseRewardModel.from_pretrained(tiny_rm_dir, device=DEVICE))
    dev = on_device.score(convs)
    for name in ("reward", "base", "mean", "std"):
        torch.testing.assert_close(getattr(dev, name), getattr(cpu, name), atol=1e-3, rtol=0)
    pairs = [
        PreferencePair(a, b, id=str(i))
        for i, (a, b) in enumerate(zip(convs[:-1], convs[1:], strict=True))
    ]
    stores = {}
    for device in ("cpu", DEVICE):
        rm_here = BaseRewardModel.from_pretrained(tiny_rm_dir, device=device)
        extract_features(rm_here, pairs, tmp_path / device.replace(":", "_"), progress=False)
        stores[device] = FeatureStore.open(tmp_path / device.replace(":", "_")).load_rows()
    torch.testing.assert_close(stores[DEVICE][0], stores["cpu"][0], atol=1e-4, rtol=1e-4)
