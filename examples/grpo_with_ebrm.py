"""GRPO with TRL, rewarded by a refined (EBRM) reward model.

    python examples/grpo_with_ebrm.py --ebrm runs/ebrm-model \
        --policy Qwen/Qwen2.5-0.5B-Instruct --dataset trl-lib/ultrafeedback-prompt

The conservative reward (posterior mean - k * std) penalises responses the reward model is
unsure about, which is where a policy finds reward hacks. Multi-GPU: launch this script
with `accelerate launch`; each process loads the small energy head and the base RM.
"""

from __future__ import annotations

import argparse

from datasets import load_dataset
from trl import GRPOConfig, GRPOTrainer

from ebrm.integrations.trl import EBRMRewardFunction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ebrm", required=True, help="refined-model directory (ebrm train)")
    parser.add_argument("--policy", required=True, help="causal LM to train (HF id or path)")
    parser.add_argument("--dataset", required=True, help="HF dataset with a 'prompt' column")
    parser.add_argument("--reward", default="conservative", help="refined|mean|conservative|base")
    parser.add_argument("--out", default="runs/grpo-ebrm")
    parser.add_argument("--max-steps", type=int, default=200)
    args = parser.parse_args()

    reward = EBRMRewardFunction(args.ebrm, reward=args.reward, batch_size=32)
    trainer = GRPOTrainer(
        model=args.policy,
        reward_funcs=[reward],  # logged as rewards/ebrm_<mode>/mean
        args=GRPOConfig(
            output_dir=args.out,
            max_steps=args.max_steps,
            num_generations=8,
            max_completion_length=256,
            logging_steps=10,
        ),
        train_dataset=load_dataset(args.dataset, split="train"),
    )
    trainer.train()


if __name__ == "__main__":
    main()
