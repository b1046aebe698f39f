"""`BaseRewardModel`: (embedding, reward) per text from any HF sequence-classification RM.

The embedding is exactly the input of the model's scalar score head at the token the
model itself pools (captured with a forward pre-hook), so `head_reward(embedding)` equals
the model's own logits. Every batch checks that identity, which makes an unknown
architecture with a different pooling rule fail loudly instead of silently.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ebrm._progress import tqdm
from ebrm.errors import ConfigError, DataFormatError, IncompatibleArtifactError
from ebrm.rm.hf import (
    DeviceMap,
    clamp_to_positions,
    head_parameters,
    input_device,
    is_offloaded,
    load_reward_model,
    weights_hash,
)
from ebrm.rm.names import DEFAULT_DTYPE, DEFAULT_MAX_LENGTH, DEFAULT_TRUNCATION_SIDE
from ebrm.rm.padding import choose_padding_side, setup_pad_token
from ebrm.rm.pooling import alone_index, find_score_head, pool_head_input

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ebrm.data.types import Conversation

_TRUNCATION_SIDES = ("left", "right")


class BaseRewardModel:
    """A frozen reward model that returns (embedding, reward) per text.

    Build it with `BaseRewardModel.from_pretrained(...)`; the constructor takes a loaded
    model and tokenizer.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        *,
        name_or_path: str,
        revision: str | None = None,
        max_length: int = 1024,
        truncation_side: str = "left",
        padding_side: str | None = None,
    ) -> None:
        if not isinstance(max_length, int) or max_length < 1:
            raise ConfigError(f"max_length must be a positive int; got {max_length!r}.")
        if truncation_side not in _TRUNCATION_SIDES:
            raise ConfigError(
                f"truncation_side must be 'left' (keep the end of the text, i.e. the response) "
                f"or 'right'; got {truncation_side!r}."
            )
        num_labels = getattr(model.config, "num_labels", None)
        if num_labels != 1:
            raise ConfigError(
                f"{name_or_path} has num_labels={num_labels}; a reward model must output one "
                "scalar (num_labels=1). Load a reward model, or train one with "
                "`ebrm base-rm train`."
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name_or_path = name_or_path
        self.revision = revision
        self.max_length = clamp_to_positions(max_length, model.config, name_or_path)
        self.truncation_side = truncation_side
        if padding_side not in (None, "left", "right"):
            raise ConfigError(f"padding_side must be 'left' or 'right'; got {padding_side!r}.")
        self.head_name, self.head = find_score_head(model)
        self.hidden_size = int(self.head.in_features)
        # The pad id the model pools by when it sees a text alone (None: its last token),
        # read before `setup_pad_token` may give the config one (often = eos) for batching.
        self.pooling_pad_id: int | None = model.config.get_text_config().pad_token_id
        self.pad_token_id = setup_pad_token(model, tokenizer, name_or_path)
        self.padding_side = choose_padding_side(
            model, tokenizer, self.head, self.pad_token_id, padding_side, name_or_path
        )
        # Left padding shifts absolute positions (GPT-2, BERT), so we pass positions that
        # start at the first real token, when the model accepts them.
        self._accepts_position_ids = "position_ids" in inspect.signature(model.forward).parameters
        self._weights_hash: str | None = None
        self.engine = None  # None: this model's own forward; else an `ebrm.rm.engine` engine

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = DEFAULT_DTYPE,
        max_length: int = DEFAULT_MAX_LENGTH,
        truncation_side: str = DEFAULT_TRUNCATION_SIDE,
        revision: str | None = None,
        padding_side: str | None = None,
        trust_remote_code: bool = False,
        device_map: DeviceMap | None = None,
        max_memory: dict[int | str, int | str] | None = None,
        offload_folder: str | os.PathLike | None = None,
    ) -> BaseRewardModel:
        """Load a local directory or hub id as a frozen reward model.

        Args:
            name_or_path: HF model directory or hub id of a sequence-classification RM.
            device: torch device (None: CUDA if available, else CPU).
            dtype: compute dtype, float32 / bfloat16 / float16.
            max_length: tokens per text after formatting; longer texts are truncated.
            truncation_side: "left" drops the start (keeps the response), "right" the end.
            revision: hub revision (branch, tag or commit).
            padding_side: "left"/"right"; None uses the tokenizer's own setting.
            trust_remote_code: allow custom model code from the hub.
            device_map: "auto" (or "balanced", "balanced_low_0", "sequential", or a dict
                of module name -> device): accelerate splits the layers across the GPUs,
                then CPU, then disk, for an RM larger than one device; leave `device`
                None. Embeddings, rewards and the weights hash equal one-device loading.
            max_memory: with `device_map`, the memory each device may hold, e.g.
                {0: "20GiB", "cpu": "60GiB"} (default: what is free).
            offload_folder: with `device_map`, where layers placed on "disk" are written.

        Raises:
            ConfigError: the model cannot be loaded or has more than one output.
        """
        model, tokenizer, name = load_reward_model(
            name_or_path,
            device=device,
            dtype=dtype,
            revision=revision,
            trust_remote_code=trust_remote_code,
            device_map=device_map,
            max_memory=max_memory,
            offload_folder=offload_folder,
        )
        return cls(
            model,
            tokenizer,
            name_or_path=name,
            revision=revision,
            max_length=max_length,
            truncation_side=truncation_side,
            padding_side=padding_side,
        )

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """Where inputs go (with a device map: the input embedding's execution device)."""
        return input_device(self.model, self.head)

    @property
    def dtype(self) -> torch.dtype:
        return self.head.weight.dtype

    @property
    def model_type(self) -> str:
        return str(getattr(self.model.config, "model_type", type(self.model).__name__))

    @property
    def weights_hash(self) -> str:
        """sha256 of the model's safetensors files (streamed), else of its state dict."""
        if self._weights_hash is None:
            self._weights_hash = weights_hash(self.name_or_path, self.revision, self.model)
        return self._weights_hash

    def saved_as(
        self, directory: str | os.PathLike, *, files_at: str | os.PathLike | None = None
    ) -> BaseRewardModel:
        """This RM now stands for its copy saved at `directory` (`save_pretrained`): its
        name and weights hash become that directory's, as `from_pretrained(directory)`
        would give them. `files_at`: where the saved files are until they are moved to
        `directory` (a staging directory); the weights hash is then computed from them."""
        self.name_or_path = str(Path(directory).resolve())
        self.revision = None
        self._weights_hash = None
        if files_at is not None:
            self._weights_hash = weights_hash(str(files_at), None, self.model)
        return self

    def provenance(self) -> dict:
        """What identifies the features this RM produces (stored with every artifact)."""
        return {
            "name_or_path": self.name_or_path,
            "revision": self.revision,
            "weights_hash": self.weights_hash,
            "hidden_size": self.hidden_size,
            "dtype": str(self.dtype).removeprefix("torch."),
            "max_length": self.max_length,
            "truncation_side": self.truncation_side,
            "padding_side": self.padding_side,
            "model_type": self.model_type,
            **(self.engine.provenance() if self.engine else {"engine": "transformers"}),
        }

    def use_engine(self, engine) -> BaseRewardModel:
        """Run the forward on `engine` (`ebrm.rm.engine`; None: this model's own
        `transformers` forward). Tokenization, the head and the provenance stay this RM's."""
        self.engine = engine
        return self

    def __repr__(self) -> str:
        return (
            f"BaseRewardModel({self.name_or_path!r}, model_type={self.model_type!r}, "
            f"hidden_size={self.hidden_size}, dtype={self.dtype}, device={self.device})"
        )

    # ------------------------------------------------------------------ text -> ids
    def format(self, conv: Conversation) -> str:
        """The text this RM scores for a conversation (its chat template when it has one)."""
        from ebrm.data import format_conversation

        return format_conversation(conv, self.tokenizer)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, truncated to `max_length` on `truncation_side`.

        A text that already starts with the tokenizer's BOS (a rendered chat template) is
        tokenized without adding special tokens again, and keeps its BOS when truncated.
        """
        tok = self.tokenizer
        tok.truncation_side = self.truncation_side
        bos = tok.bos_token
        templated = [bool(bos) and text.startswith(bos) for text in texts]
        ids: list[list[int] | None] = [None] * len(texts)
        for add_special in (True, False):
            index = [i for i, t in enumerate(templated) if t != add_special]
            if not index:
                continue
            encoded = tok(
                [texts[i] for i in index],
                add_special_tokens=add_special,
                truncation=True,
                max_length=self.max_length,
            )["input_ids"]
            for i, row in zip(index, encoded, strict=True):
                row = list(row)
                if not add_special and row and row[0] != tok.bos_token_id:
                    # Left truncation cut the template's BOS; put it back, as the tokenizer
                    # does for special tokens it adds itself (decoders expect it first).
                    row = [tok.bos_token_id, *row[1:]]
                ids[i] = row
        for i, row in enumerate(ids):
            if not row:
                raise DataFormatError(
                    f"Text {i} tokenizes to zero tokens ({texts[i]!r}); a reward model needs at "
                    "least one token. Drop empty texts before embedding."
                )
        return ids  # type: ignore[return-value]

    # ------------------------------------------------------------------ embeddings
    def embed_texts(
        self, texts: Sequence[str], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings and rewards of raw texts.

        Texts are sorted by token length into batches (longest first, so an out-of-memory
        error shows up at once) and returned in input order.

        Returns:
            (embeddings (N, D) float32 cpu, rewards (N,) float32 cpu).
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size}.")
        texts = list(texts)
        ids = self.tokenize(texts)
        return self.embed_token_ids(ids, batch_size=batch_size, progress=progress)

    def embed_token_ids(
        self, ids: Sequence[Sequence[int]], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`embed_texts` on already tokenized rows (same length-sorted batching), on this
        RM's engine when it has one (`use_engine`)."""
        if self.engine is not None:
            return self.engine.embed_token_ids(ids, batch_size=batch_size, progress=progress)
        n = len(ids)
        embeddings = torch.empty((n, self.hidden_size), dtype=torch.float32)
        rewards = torch.empty((n,), dtype=torch.float32)
        order = sorted(range(n), key=lambda i: len(ids[i]), reverse=True)
        bar = tqdm(total=n, desc="embed", unit="text", disable=not progress)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            emb, rew = self._forward_batch([ids[i] for i in index])
            embeddings[index] = emb
            rewards[index] = rew
            bar.update(len(index))
        bar.close()
        return embeddings, rewards

    def embed_conversations(
        self, convs: Sequence[Conversation], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`embed_texts` of `format(conv)` for each conversation."""
        return self.embed_texts(
            [self.format(conv) for conv in convs], batch_size=batch_size, progress=progress
        )

    def collate(self, rows: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """Pad token rows into model inputs on this RM's device and padding side."""
        length = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            start = 0 if self.padding_side == "right" else length - len(row)
            span = slice(start, start + len(row))
            input_ids[i, span] = torch.as_tensor(row, dtype=torch.long)
            attention_mask[i, span] = 1
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.padding_side == "left" and self._accepts_position_ids:
            inputs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        return {key: value.to(self.device) for key, value in inputs.items()}

    @torch.inference_mode()
    def _forward_batch(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self.collate(rows)
        captured: list[tuple[torch.Tensor, torch.Tensor]] = []
        handle = self.head.register_forward_hook(
            lambda _m, args, out: captured.append((args[0], out))
        )
        try:
            logits = self.model(**inputs).logits  # (B, 1)
        finally:
            handle.remove()
        if len(captured) != 1:
            raise IncompatibleArtifactError(
                f"The score head {self.head_name!r} of {self.name_or_path} ran {len(captured)} "
                "times in one forward pass; cannot tell which call produced the reward."
            )
        head_input, head_output = captured[0]  # (B, H) and (B, 1), or (B, T, H) and (B, T, 1)
        pooled = pool_head_input(head_input, inputs["input_ids"], self.pad_token_id)  # (B, H)
        self._check_identity(pooled, logits)
        if head_input.ndim == 2:  # the model pooled before its head ([CLS]): nothing to pick
            return pooled.float().cpu(), logits[:, 0].float().cpu()
        # The model's own in-batch rule (pad-id equality) can depend on the padding (pad ==
        # eos, a text of pad ids); pick the token the model pools for the text alone instead
        # (the same token in every other case, so then the reward is exactly its logit).
        index = alone_index(inputs["input_ids"], inputs["attention_mask"], self.pooling_pad_id)
        index = index.to(head_input.device)
        rows_ = torch.arange(head_input.shape[0], device=head_input.device)
        return head_input[rows_, index].float().cpu(), head_output[rows_, index, 0].float().cpu()

    def _check_identity(self, pooled: torch.Tensor, logits: torch.Tensor) -> None:
        """head(pooled) must reproduce the model's logits, or the pooling is not the model's."""
        if is_offloaded(self.head):  # its weights are on disk or CPU: read them back
            weight, bias = head_parameters(self.head)
            recomputed = nn.functional.linear(
                pooled,
                weight.to(pooled.device, pooled.dtype),
                None if bias is None else bias.to(pooled.device, pooled.dtype),
            )
        else:
            recomputed = self.head(pooled)
        tol = 1e-4 if pooled.dtype == torch.float32 else 3e-2
        scale = 1.0 + float(logits.abs().max())
        if not torch.allclose(recomputed.float(), logits.float(), rtol=tol, atol=tol * scale):
            raise IncompatibleArtifactError(
                f"The input of {self.name_or_path}'s score head {self.head_name!r} at the "
                f"pooled token does not reproduce the model's reward ({type(self.model).__name__} "
                "pools differently from the last non-pad token or [CLS]). This architecture is "
                "not supported; please report it."
            )

    # ------------------------------------------------------------------ head
    def head_reward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The RM's own score head applied to embeddings, in float32.

        Args:
            embeddings: (N, D) as returned by `embed_texts`.

        Returns:
            (N,) float32 cpu rewards; equal to the model's logits up to float rounding.
        """
        if embeddings.ndim != 2 or embeddings.shape[1] != self.hidden_size:
            raise ConfigError(
                f"embeddings must have shape (N, {self.hidden_size}); "
                f"got {tuple(embeddings.shape)}."
            )
        weight, bias = head_parameters(self.head)
        out = nn.functional.linear(embeddings.detach().float().cpu(), weight, bias)
        return out[:, 0]
