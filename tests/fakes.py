"""The test fakes, in one place, each standing in for one library interface.

`tests/test_fakes.py` checks every fake against the Protocol (or class) it imitates, so a
fake cannot drift from the real thing: when a Protocol gains a parameter, that test fails
here instead of a production module bending to a stale fake.

Scorers (what the integrations call):
  `FakeScorer`: `ebrm.integrations._common.Scorer`, i.e. `EnergyRewardModel.score`,
  returning a real `RefinedRewards` with known values (`fake_rewards`); used by the server,
  TRL, verl and best-of-n tests.
Base RMs:
  `FakeRM`: `ebrm.features.plan.EmbeddingModel` (`BaseRewardModel` for extraction);
  `SeededRM`: what `EnergyRewardModel` needs of its base RM (`EmbeddingRM` + provenance);
  `ParsingRM`: `ebrm.evaluation.protocols.EmbeddingRM` with rewards read from the text.
A refined model with known rewards (what evaluation calls):
  `FakeModel`: `ebrm.evaluation.protocols.TextRefiningModel`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time

import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.refine.config import RefineConfig
from ebrm.refine.results import RefinedRewards

# ---- scorers: what the integrations call ---------------------------------------------------


def text_value(conv: Conversation) -> float:
    """A deterministic 'base reward' that depends on every part of the conversation."""
    text = "|".join(f"{r}:{c}" for r, c in conv.messages) + "#" + conv.response
    return (sum((i + 1) * ord(ch) for i, ch in enumerate(text)) % 1000) / 100.0 - 5.0


def fake_rewards(convs: list[Conversation]) -> RefinedRewards:
    """Every column a deterministic function of `text_value`, each kind distinct."""
    base = torch.tensor([text_value(c) for c in convs], dtype=torch.float32)
    mean = 0.5 * base + 0.25
    std = 0.1 + 0.05 * base.abs()
    return RefinedRewards(
        reward=0.5 * base + 1.0,
        base=base,
        base_raw=base * 2.0 + 3.0,
        mean=mean,
        std=std,
        spread=0.5 * std,
        q05=mean - 1.645 * std,
        q50=mean + 0.01,
        q95=mean + 1.645 * std,
        mode=mean - 0.02,
        log_z=torch.zeros_like(base),
        conservative=mean - std,
    )


class FakeScorer:
    """Records each call's batch size; optionally sleeps per call, or needs autograd."""

    def __init__(self, *, delay: float = 0.0, needs_grad: bool = False) -> None:
        self.delay = delay
        self.needs_grad = needs_grad
        self.batch_sizes: list[int] = []
        self.seen: list[Conversation] = []
        self._lock = threading.Lock()

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock())

    def score(self, convs: list[Conversation], *, batch_size: int = 16) -> RefinedRewards:
        with self._lock:
            self.batch_sizes.append(len(convs))
            self.seen.extend(convs)
        if self.needs_grad:  # like gradient-ascent refinement: autograd must be usable
            with torch.enable_grad():
                y = torch.zeros(len(convs), requires_grad=True)
                (y * 2.0).sum().backward()
                assert y.grad is not None
        if self.delay:
            time.sleep(self.delay)
        return fake_rewards(convs)


# ---- base RMs: what extraction and the refined model call ------------------------------


def fake_embedding(text: str, dim: int) -> torch.Tensor:
    """A deterministic (dim,) vector per text, independent of batching."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return torch.randn(dim, generator=torch.Generator().manual_seed(seed))


class FakeRM:
    """embed_texts(text) = fake_embedding(text); reward = sum of the embedding."""

    def __init__(
        self, dim: int = 8, *, weights_hash: str = "w0", max_length: int = 64, fail_after=None
    ):
        self.hidden_size = dim
        self.weights_hash = weights_hash
        self.max_length = max_length
        self.truncation_side = "left"
        self.fail_after = fail_after  # raise on this embed_texts call (simulated crash)
        self.calls: list[list[str]] = []

    def format(self, conv: Conversation) -> str:
        return " | ".join(f"{r}: {c}" for r, c in conv.messages) + f" || {conv.response}"

    def embed_texts(self, texts, *, batch_size=16, progress=False):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls.append(list(texts))
        emb = torch.stack([fake_embedding(t, self.hidden_size) for t in texts])
        return emb, emb.sum(dim=1)

    def provenance(self) -> dict:
        return {
            "name_or_path": "fake",
            "revision": None,
            "weights_hash": self.weights_hash,
            "hidden_size": self.hidden_size,
            "dtype": "float32",
            "max_length": self.max_length,
            "truncation_side": self.truncation_side,
            "model_type": "fake",
        }


def make_pairs(n: int, *, duplicates: bool = True) -> list[PreferencePair]:
    """n pairs with varied lengths; with `duplicates`, some responses repeat across pairs."""
    pairs = []
    for i in range(n):
        prompt = f"question {i % 5}" + " please" * (i % 5)
        chosen = (
            "a helpful answer" if duplicates and i % 4 == 0 else f"good answer {i}" * (1 + i % 3)
        )
        rejected = f"bad answer {i % 3 if duplicates else i}"
        # i % 4 == 0 with the same prompt repeats the exact chosen text: deduplicated
        pairs.append(
            PreferencePair(
                Conversation.from_prompt(prompt, chosen),
                Conversation.from_prompt(prompt, rejected),
                id=f"pair-{i}",
                subset="s" if i % 2 else None,
            )
        )
    return pairs


class SeededRM:
    """The parts of BaseRewardModel that EnergyRewardModel uses: provenance + embeddings.

    `embed_conversations` returns `seeded_features(len(convs), dim, seed)` whatever the text.
    """

    def __init__(
        self, weights_hash: str = "sha256:aaa", hidden_size: int = 12, *, seed: int = 7
    ) -> None:
        self.name_or_path, self.weights_hash, self.hidden_size = "fake", weights_hash, hidden_size
        self.seed = seed
        self.calls: list = []

    def embed_conversations(self, convs, *, batch_size=16, progress=False):
        self.calls.append((len(convs), batch_size))
        return seeded_features(len(convs), self.hidden_size, self.seed)


def seeded_features(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, dim) embeddings and (n,) raw rewards from a seeded normal generator."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g), torch.randn(n, generator=g)


# ---- a refined model with known rewards: what evaluation calls ---------------------------

SCALE = 4.0


def parse(text: str) -> tuple[float, float]:
    raw = float(re.search(r"r=(-?[\d.]+)", text).group(1))
    bonus = re.search(r"b=(-?[\d.]+)", text)
    return raw, float(bonus.group(1)) if bonus else 0.0


class ParsingRM:
    """embed_conversations: (raw, bonus) parsed from each response, as a (N, 2) embedding."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts_seen: list[str] = []

    def embed_conversations(self, convs, *, batch_size=16, progress=False):
        self.calls += 1
        self.texts_seen += [c.response for c in convs]
        rows = [parse(c.response) for c in convs]
        emb = torch.tensor(rows, dtype=torch.float32).reshape(len(rows), 2)
        return emb, emb[:, 0].clone()


class FakeModel:
    """A refined model with known rewards, for the evaluation tests.

    A response "r=<raw> b=<bonus> ..." gets base reward 4 * raw (normalised units; raw units
    are `raw`) and refined reward 4 * (raw + bonus), posterior std 1, and
    P(a > b) = sigmoid(refined_a - refined_b).
    """

    def __init__(self) -> None:
        self.base_rm = ParsingRM()
        self.base_rm_info = {"name_or_path": "fake-rm"}
        self.refine_config = RefineConfig()
        self.references = None

    def refine(self, embeddings, base_rewards, *, method=None, progress=False):
        base = SCALE * base_rewards
        refined = SCALE * (embeddings[:, 0] + embeddings[:, 1])
        ones = torch.ones_like(refined)
        return RefinedRewards(
            reward=refined,
            base=base,
            base_raw=base_rewards,
            mean=refined,
            std=ones,
            spread=ones,
            q05=refined - 1.645,
            q50=refined,
            q95=refined + 1.645,
            mode=refined,
            log_z=torch.zeros_like(refined),
            conservative=refined - ones,
            method="mean",
        )

    def p_better(self, emb_a, emb_b):
        fa = SCALE * (emb_a[:, 0] + emb_a[:, 1])
        fb = SCALE * (emb_b[:, 0] + emb_b[:, 1])
        return torch.sigmoid(fa - fb)
