"""EBRM rewards for OpenRLHF from one or several `ebrm serve` replicas, with retries.

OpenRLHF's own client (`--remote_rm_url http://host:port/get_reward`) posts to one URL per
rank and does not skip a replica that is down. Pointing OpenRLHF at this file instead,
`--remote_rm_url $(python -c "import ebrm.integrations.openrlhf_reward as m; print(m.__file__)")`,
makes it call `reward_func`, which posts to the replicas in `EBRM_SERVER_URL` (one URL or a
comma-separated list; token `EBRM_TOKEN`, timeout `EBRM_TIMEOUT`, retries `EBRM_RETRIES`,
reward `EBRM_REWARD`) through `ebrm.integrations._client`: the load spreads, a replica that
fails is skipped for a while, and when all fail one error names each URL and its failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ebrm.errors import ConfigError
from ebrm.integrations._client import client_from_env
from ebrm.integrations._common import reward_from_env


def reward_func(
    queries: Sequence[str],
    prompts: Sequence[str] | None = None,
    labels: Sequence[Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """OpenRLHF's custom reward function: {"rewards", "scores", "extra_logs"} as tensors.

    Each query is the policy's decoded prompt + response; the server splits it at its
    prompt exactly as for OpenRLHF's own `/get_reward` requests.
    """
    import torch  # OpenRLHF builds its advantages from tensors

    client = client_from_env()
    if client is None:
        raise ConfigError(
            "EBRM_SERVER_URL is not set; set it to the `ebrm serve` replicas, e.g. "
            "export EBRM_SERVER_URL=http://10.0.0.5:5000,http://10.0.0.6:5000."
        )
    answer = client.get_reward(queries, prompts, labels, reward=reward_from_env())
    tensor = lambda values: torch.tensor(values, dtype=torch.float32)  # noqa: E731
    return {
        "rewards": tensor(answer["rewards"]),
        "scores": tensor(answer["scores"]),
        "extra_logs": {key: tensor(values) for key, values in answer["extra_logs"].items()},
    }
