"""A real TRL `GRPOTrainer` run of 2 steps on CPU, rewarded by an EBRM model."""

from __future__ import annotations

import pytest
import torch

from ebrm.integrations.trl import EBRMRewardFunction

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


class Counting(EBRMRewardFunction):
    """Records every reward it returns (per call) so the test can compare with the logs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.returned: list[list[float]] = []

    def __call__(self, prompts, completions, **kwargs):
        rewards = super().__call__(prompts, completions, **kwargs)
        self.returned.append(rewards)
        self.conversational = isinstance(completions[0], list)
        return rewards


def _tiny_policy():
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tests.tiny_models import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.eos_token = tokenizer.sep_token
    tokenizer.model_input_names = ["input_ids", "attention_mask"]  # a causal LM has no segments
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config), tokenizer


def test_grpo_two_steps_with_ebrm_rewards(tmp_path, tiny_ebrm_dir):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, tokenizer = _tiny_policy()
    prompts = [[{"role": "user", "content": f"Tell me about topic {i}."}] for i in range(8)]
    reward = Counting(str(tiny_ebrm_dir), reward="conservative", batch_size=8, device="cpu")
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        use_cpu=True,
        bf16=False,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=6,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tokenizer,
    )
    trainer.train()

    assert reward.calls >= 2 and all(len(r) == 4 for r in reward.returned)
    assert reward.conversational  # TRL passed message lists, which we scored
    logged = [
        h["rewards/ebrm_conservative/mean"]
        for h in trainer.state.log_history
        if "rewards/ebrm_conservative/mean" in h
    ]
    assert len(logged) == 2
    means = [sum(r) / len(r) for r in reward.returned]
    assert logged == pytest.approx(means, rel=1e-4, abs=1e-5)
