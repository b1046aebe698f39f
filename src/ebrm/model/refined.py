"""`EnergyRewardModel`: the class (see the `ebrm.model` package docstring)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ebrm._device import resolve_device
from ebrm.data.split import prompt_hash
from ebrm.data.types import PreferencePair
from ebrm.energy.head import EnergyHead
from ebrm.errors import ConfigError, DataFormatError
from ebrm.model import io
from ebrm.model.base_rm import check_base_rm, load_base_rm
from ebrm.references import ReferenceSet, fit_references_on
from ebrm.refine import grid as grid_refine
from ebrm.refine import uncertainty
from ebrm.refine.calibration import temperature_scale
from ebrm.refine.config import METHODS, RefineConfig
from ebrm.refine.paper import paper_refine
from ebrm.refine.results import RefinedRewards
from ebrm.refine.selection import select_refinement

if TYPE_CHECKING:
    from ebrm.energy.train import TrainResult
    from ebrm.features.table import PairFeatures


class EnergyRewardModel:
    """A base RM's energy head plus everything needed to refine its rewards.

    Args:
        head: the trained `EnergyHead`.
        normalizer: the fitted `RewardNormalizer` (raw base reward -> normalised y).
        refine_config: how to refine; default `RefineConfig()`.
        base_rm_info: the base RM's provenance (name_or_path, revision, weights_hash,
            hidden_size, max_length, truncation_side, dtype, ...).
        train_info: what training recorded (metrics, filter report, chosen method and the
            validation numbers behind it); JSON-serialisable.
        base_rm: an already loaded `ebrm.rm.adapter.BaseRewardModel` (optional).
        references: the rewards it is judged against (calibrated base, Laplace, ensemble;
            `ebrm.references.fit_references_on`), saved beside the head.
    """

    def __init__(
        self,
        head: EnergyHead,
        normalizer: Any,
        refine_config: RefineConfig | None = None,
        base_rm_info: dict | None = None,
        train_info: dict | None = None,
        *,
        base_rm: Any = None,
        references: ReferenceSet | None = None,
    ) -> None:
        self.head = head.eval()
        self.normalizer = normalizer
        self.refine_config = refine_config or RefineConfig()
        self.base_rm_info = dict(base_rm_info or {})
        self.train_info = dict(train_info or {})
        self.references = references
        self._base_rm = None
        if base_rm is not None:
            self.attach_base_rm(base_rm)

    @classmethod
    def from_training(
        cls,
        result: TrainResult,
        *,
        validation: PairFeatures | None = None,
        base_rm_info: dict | None = None,
        alpha: float = 0.05,
        references: bool = False,
    ) -> EnergyRewardModel:
        """The refined model of a training run, its refinement chosen on validation pairs.

        The grid covers the normalised training rewards (`result.reward_range`); the refined
        reward (posterior mean unless the mode is clearly better) and the `p_better`
        temperature are chosen on `validation` (`ebrm.refine.selection.select_refinement`).

        Args:
            result: what `ebrm.energy.train_energy_head` returned (its head is used, not
                copied).
            validation: the pairs to choose on; default the pairs training validated on.
            base_rm_info: the base RM's provenance (e.g. `FeatureStore.provenance`).
            alpha: significance level of the mean-vs-mode McNemar test.
            references: also fit the references it is judged against (calibrated base,
                Laplace, ensemble; `ebrm.references`) on the same training and validation
                pairs and labels (seconds on ~1k pairs).

        Example:
            >>> result = train_energy_head(features, config)  # doctest: +SKIP
            >>> model = EnergyRewardModel.from_training(result, base_rm_info=store.provenance)
        """
        if validation is None:
            validation = result.validation_features
        low, high = result.reward_range
        refine_config = RefineConfig(grid_min=low, grid_max=high)
        numbers = dict(result.validation)
        if validation is not None:
            refine_config, chosen = select_refinement(
                result.head, validation, refine_config, alpha=alpha
            )
            numbers.update(chosen)
        train_info = {**result.info, "validation": numbers}
        refs = None
        if references and result.train_features is not None:
            seed = int(result.config.seed)
            refs = fit_references_on(result.train_features, validation, seed=seed)
        return cls(
            result.head, result.normalizer, refine_config, base_rm_info, train_info,
            references=refs,
        )  # fmt: skip

    # ---- properties -------------------------------------------------------------------
    @property
    def embedding_dim(self) -> int:
        return int(self.head.config.embedding_dim)

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def to(self, device: str | torch.device) -> EnergyRewardModel:
        self.head.to(resolve_device(device))
        return self

    def to_raw(self, values: torch.Tensor) -> torch.Tensor:
        """Locations (rewards, means, quantiles) in normalised units -> base RM raw units."""
        return self.normalizer.inverse_transform(values)

    # ---- what it was trained on ---------------------------------------------------------
    def seen_prompt_hashes(self) -> frozenset[str] | None:
        """Hashes (`ebrm.data.prompt_hash`) of the prompts training used, train and validation.

        None when the model records none (trained before they were recorded, or on features
        without prompt hashes): overlap with evaluation data is then unknown.
        """
        prompts = self.train_info.get("prompts")
        if not isinstance(prompts, dict):
            return None
        return frozenset(prompts.get("train") or ()) | frozenset(prompts.get("validation") or ())

    def count_seen(self, pairs: Iterable[PreferencePair]) -> int | None:
        """How many of `pairs` have a prompt this model trained or validated on (None: unknown)."""
        seen = self.seen_prompt_hashes()
        if seen is None:
            return None
        return sum(prompt_hash(pair) in seen for pair in pairs)

    # ---- refinement -------------------------------------------------------------------
    def posterior(self, embeddings: torch.Tensor, *, progress: bool = False):
        """Grid posterior statistics (`ebrm.refine.grid.Posterior`) of (N, D) embeddings."""
        return grid_refine.grid_posterior(
            self.head,
            embeddings,
            progress=progress,
            **self.refine_config.grid_kwargs(),
        )

    def refine(
        self,
        embeddings: torch.Tensor,
        base_rewards: torch.Tensor,
        *,
        method: str | None = None,
        progress: bool = False,
    ) -> RefinedRewards:
        """Refined rewards of N responses from their embeddings and raw base rewards.

        Empty input (N = 0) returns a `RefinedRewards` of empty tensors.

        Args:
            embeddings: (N, D) base-RM embeddings.
            base_rewards: (N,) the base RM's rewards in its raw units.
            method: override `refine_config.method` (mean|mode|median|conservative|paper|ascent).
            progress: show a progress bar.

        Raises:
            IncompatibleArtifactError: D differs from the head's embedding dimension.
            DataFormatError: NaN/inf values, or shapes that do not match.
        """
        cfg = self.refine_config
        method = method or cfg.method
        if method not in METHODS:
            raise ConfigError(
                f"Unknown refinement method {method!r}; choose one of {', '.join(METHODS)}."
            )
        embeddings, base_raw = _refine_inputs(embeddings, base_rewards)
        if embeddings.shape[0] == 0:
            from ebrm.refine._util import check_embeddings

            check_embeddings(self.head, embeddings)  # still report a dimension mismatch
            return RefinedRewards.empty(method)
        base = self.normalizer.transform(base_raw).to(torch.float32)
        post = self.posterior(embeddings, progress=progress)
        # the spread, not the std: the std of a head whose f flattens far from the data is
        # set by the grid's range (a floor of mass over the whole grid), see half_width
        cons = uncertainty.spread_lower_bound(post.mean, post.spread, cfg.conservative_k)
        if method in ("paper", "ascent"):
            reward = paper_refine(
                self.head,
                embeddings,
                base,
                steps=cfg.paper_steps,
                step_size=cfg.paper_step_size,
                decay=cfg.paper_decay,
                min_step=cfg.paper_min_step,
                hybrid_init=method == "paper",
                generator=torch.Generator().manual_seed(cfg.seed),
            )
        else:
            reward = {"mean": post.mean, "mode": post.mode, "median": post.q50}.get(method, cons)
        return RefinedRewards(
            reward=reward,
            base=base,
            base_raw=base_raw,
            mean=post.mean,
            std=post.std,
            spread=post.spread,
            q05=post.q05,
            q50=post.q50,
            q95=post.q95,
            mode=post.mode,
            log_z=post.log_z,
            conservative=cons,
            method=method,
            references={}
            if self.references is None
            else self.references.columns(embeddings.detach().cpu(), k=cfg.conservative_k),
        )

    def p_better(self, emb_a: torch.Tensor, emb_b: torch.Tensor) -> torch.Tensor:
        """P(y_a > y_b) (N,) for rows a[i], b[i] under independent posteriors.

        Temperature-scaled with `refine_config.p_better_temperature` (fitted on the
        validation pairs at training time; 1.0 = the raw posterior probability).
        """
        p = grid_refine.p_better(self.head, emb_a, emb_b, **self.refine_config.grid_kwargs())
        return temperature_scale(p, float(self.refine_config.p_better_temperature))

    # ---- the base RM ------------------------------------------------------------------
    def attach_base_rm(self, rm: Any) -> EnergyRewardModel:
        """Use `rm` for `score()`; it must be the base RM the head was trained on.

        Raises:
            IncompatibleArtifactError: weight hash, max length, truncation side or hidden
                size differ (names both).
        """
        check_base_rm(self.base_rm_info, rm, self.embedding_dim)
        self._base_rm = rm
        return self

    @property
    def base_rm(self) -> Any:
        """The attached base RM, loaded from `base_rm_info` on first use."""
        if self._base_rm is None:
            self.attach_base_rm(load_base_rm(self.base_rm_info, self.device))
        return self._base_rm

    def score(self, convs: list, *, batch_size: int = 16, progress: bool = False):
        """Embed conversations with the base RM and refine their rewards.

        Args:
            convs: `ebrm.data.types.Conversation` objects.
            batch_size: base-RM batch size.

        Returns:
            `RefinedRewards` in input order.
        """
        embeddings, rewards = self.base_rm.embed_conversations(
            list(convs), batch_size=batch_size, progress=progress
        )
        return self.refine(embeddings, rewards, progress=progress)

    # ---- persistence (`ebrm.model.io`) ------------------------------------------------
    def config_dict(self) -> dict:
        """The JSON-serialisable content of config.json."""
        return io.config_dict(self)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the refined-model directory atomically (see `ebrm.model` docstring)."""
        return io.save_pretrained(self, directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        base_rm: Any = None,
    ) -> EnergyRewardModel:
        """Load a refined-model directory written by `save_pretrained`.

        Raises:
            CorruptArtifactError: a file is missing or corrupt (names the file).
            IncompatibleArtifactError: not an ebrm refined model, a newer format, or a
                `base_rm` whose weights differ from the recorded ones (names both).
        """
        return io.load_pretrained(cls, directory, device, base_rm)

    def __repr__(self) -> str:
        return (
            f"EnergyRewardModel(base_rm={self.base_rm_info.get('name_or_path')!r}, "
            f"embedding_dim={self.embedding_dim}, method={self.refine_config.method!r})"
        )


def _refine_inputs(
    embeddings: torch.Tensor, base_rewards: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, raw base rewards as float32 on the CPU), shapes and values checked."""
    embeddings = torch.as_tensor(embeddings)
    base_raw = torch.as_tensor(base_rewards).detach().cpu().to(torch.float32)
    if base_raw.ndim != 1 or embeddings.ndim != 2 or base_raw.shape[0] != embeddings.shape[0]:
        raise DataFormatError(
            f"refine needs embeddings (N, D) and base_rewards (N,); got shapes "
            f"{tuple(embeddings.shape)} and {tuple(base_raw.shape)}"
        )
    if not torch.isfinite(base_raw).all():
        bad = (~torch.isfinite(base_raw)).nonzero().flatten()
        raise DataFormatError(
            f"base_rewards contain NaN or infinite values in {bad.numel()} of "
            f"{base_raw.numel()} rows (first bad row: {int(bad[0])}); drop those rows"
        )
    return embeddings, base_raw
