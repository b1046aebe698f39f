"""A fake base RM with BaseRewardModel's extraction interface, for fast store tests."""

from __future__ import annotations

import hashlib

import torch

from ebrm.data.types import Conversation, PreferencePair


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
