"""`ebrm extract --engine vllm` and `ebrm serve`'s app on the vLLM engine give what the
transformers engine gives (fp32, 1e-4), and say which engine made them."""

from __future__ import annotations

import json

import pytest
import torch

from tests.engines.conftest import NEEDS_VLLM, free, make_engine_rm

pytest.importorskip("vllm", reason=NEEDS_VLLM)

TOL = 1e-4
PAIRS = [
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5, or maybe 22"},
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon, on the Rhone"},
    {"prompt": "Say hi " * 20, "chosen": "hi " * 30, "rejected": "no"},  # truncated
]


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory):
    return make_engine_rm(tmp_path_factory.mktemp("engine-cli") / "rm", "qwen2")


def test_extract_on_vllm_equals_transformers_and_records_the_engine(rm_dir, tmp_path, monkeypatch):
    from ebrm.cli import main
    from ebrm.features.store import FeatureStore

    monkeypatch.setenv("EBRM_ENGINE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    stores = {}
    for engine in ("transformers", "vllm"):
        out = tmp_path / engine
        args = ["extract", "--rm", str(rm_dir), "--data", str(data), "--out", str(out),
                "--max-length", "24", "--no-progress", "--engine", engine]  # fmt: skip
        assert main(args) == 0
        stores[engine] = FeatureStore.open(out)
    want, got = stores["transformers"], stores["vllm"]
    assert want.provenance["engine"] == "transformers"
    assert got.provenance["engine"] == "vllm"
    assert got.provenance["engine_backbone"].startswith(str(tmp_path / "cache"))
    for a, b in zip(got.load_rows(), want.load_rows(), strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=TOL, rtol=TOL)


def test_server_on_vllm_returns_the_transformers_rewards(rm_dir, tmp_path):
    import httpx

    from ebrm.integrations.server import ServerConfig, create_app
    from ebrm.model import EnergyRewardModel
    from ebrm.rm.engine import use_engine
    from tests.engines.conftest import vllm_options
    from tests.integrations.serving import running_server
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    model = make_tiny_ebrm(tmp_path / "model", rm_dir)
    items = [{"prompt": p["prompt"], "response": p[side]} for p in PAIRS
             for side in ("chosen", "rejected")]  # fmt: skip
    results = {}
    for engine in ("transformers", "vllm"):
        erm = EnergyRewardModel.from_pretrained(model, device="cpu")
        if engine == "vllm":
            use_engine(erm.base_rm, vllm_options(tmp_path / "cache"))
            config = ServerConfig(token="t0k", max_batch_size=16, forward_batch_size=16,
                                  forward_overhead_tokens=1e12)  # fmt: skip
        else:
            config = ServerConfig(token="t0k")
        with running_server(create_app(erm, config)) as url:
            assert httpx.post(f"{url}/score", json={"items": items}).status_code == 401
            resp = httpx.post(f"{url}/score", json={"items": items},
                              headers={"Authorization": "Bearer t0k"}, timeout=120)  # fmt: skip
            assert resp.status_code == 200, resp.text
            results[engine] = resp.json()["results"]
        if engine == "vllm":
            free(erm.base_rm)
    for got, want in zip(results["vllm"], results["transformers"], strict=True):
        for key in ("reward", "base", "mean"):
            assert got[key] == pytest.approx(want[key], abs=TOL, rel=TOL), key
