"""Options of the over-optimisation harness (`ebrm overopt`)."""

from __future__ import annotations

from dataclasses import dataclass

from ebrm._config import check_bool, check_float, check_int, from_dict, invalid, to_dict


@dataclass(frozen=True)
class OveroptConfig:
    """Options of `run_overopt` (defaults: the documented run, <= 30 min on 2 CPU cores)."""

    num_prompts: int = 200  # pool prompts (held out from every proxy)
    num_candidates: int = 500  # K candidates per prompt (best-of-n up to n = K)
    edited: int = 200  # real responses also rewritten by every edit (the pools' own first)
    label_noise: tuple[float, ...] = (0.25, 0.40)  # one regime per proxy label-noise level
    proxy_fraction: float = 0.1  # share of the non-pool pairs each proxy trains on
    conservative_k: float = 1.0  # k of EBRM mean - k*spread and the references' mean - k*std
    max_length: int = 64  # tokens per response (left-truncated: its end is kept)
    gold_hidden: int = 64  # gold's hidden tanh units (0: a linear head like the proxies)
    head_epochs: float = 30.0  # epochs of every BT head (batch 256, AdamW lr 1e-2)
    head_weight_decay: float = 0.0  # AdamW weight decay of the BT heads
    kl_step: float = 0.5  # spacing of the matched KL targets [nats]
    pg_steps: int = 200  # steps of the policy-gradient run
    pg_beta: float = 0.02  # its KL penalty, in units of the proxy's within-prompt spread
    ascent: bool = True  # also the embedding-space policy (ascent.py), one regime per level
    ascent_max_angle: float = 1.6  # its largest angle budget [rad] (a linear proxy's optimum
    # lies ~pi/2 from the real responses: they are nearly orthogonal to every head's weights)
    ascent_budget_step: float = 0.1  # spacing of its angle budgets [rad]
    ascent_steps: int = 8  # its gradient steps per budget (warm-started)
    references: bool = True  # also the Laplace and ensemble references (ebrm.references)
    seed: int = 0  # seeds the split, the edits' sample, label flips, pools and training
    batch_size: int = 64  # texts per forward pass
    device: str | None = None  # torch device; None: CUDA if available
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        check_int(self, "num_prompts", low=1)
        check_int(self, "num_candidates", low=2)
        check_int(self, "edited", low=0)
        levels = self.label_noise
        if isinstance(levels, list):  # from JSON (`to_dict` writes tuples as lists)
            levels = tuple(levels)
            object.__setattr__(self, "label_noise", levels)
        if not (isinstance(levels, tuple) and levels and all(_level(p) for p in levels)):
            raise invalid(self, "label_noise", "a non-empty tuple of floats in [0, 0.5)", levels)
        check_float(self, "proxy_fraction", low=0.0, high=1.0, low_open=True)
        check_float(self, "conservative_k", low=0.0)
        check_int(self, "max_length", low=8)
        check_int(self, "gold_hidden", low=0)
        check_float(self, "head_epochs", low=0.0, low_open=True)
        check_float(self, "head_weight_decay", low=0.0)
        check_float(self, "kl_step", low=0.0, low_open=True)
        check_int(self, "pg_steps", low=1)
        check_float(self, "pg_beta", low=0.0, low_open=True)
        check_bool(self, "ascent")
        check_float(self, "ascent_max_angle", low=0.0, high=3.14159, low_open=True)
        check_float(self, "ascent_budget_step", low=0.0, low_open=True)
        check_int(self, "ascent_steps", low=1)
        check_bool(self, "references")
        check_int(self, "seed")
        check_int(self, "batch_size", low=1)
        check_bool(self, "progress")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> OveroptConfig:
        """Inverse of `to_dict`; unknown keys are dropped with one warning naming them."""
        return from_dict(cls, data)


def _level(p: object) -> bool:
    return isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p < 0.5
