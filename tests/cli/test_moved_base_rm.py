"""A refined model whose base RM moved (or is a hub id missing from the offline cache):
refused before any loading, in one line naming the missing path, what the model recorded
and `--base-rm PATH` (issue 25 item 1); never the hub's "Repo id must be in the form"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from tests.cli.test_user_errors import ROOT, RUNNER

from ebrm.errors import IncompatibleArtifactError
from ebrm.model.base_rm import check_base_rm_found, is_local_path


@pytest.fixture(scope="module")
def moved(tmp_path_factory, tiny_rm_dir):
    """runs/model trained on runs/base_rm, which was then moved to elsewhere/base_rm; and a
    copy of the model that records a hub id nobody has cached."""
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    root = tmp_path_factory.mktemp("moved")
    shutil.copytree(tiny_rm_dir, root / "runs" / "base_rm")
    make_tiny_ebrm(root / "runs" / "model", root / "runs" / "base_rm")
    recorded = json.loads((root / "runs" / "model" / "config.json").read_text())["base_rm"]
    shutil.move(root / "runs" / "base_rm", root / "elsewhere")
    shutil.copytree(root / "runs" / "model", root / "hub-model")
    config = json.loads((root / "hub-model" / "config.json").read_text())
    config["base_rm"] = {**config["base_rm"], "name_or_path": "ebrm-tests/never-cached-rm"}
    config["base_rm"].pop("relative_path", None)
    (root / "hub-model" / "config.json").write_text(json.dumps(config))
    row = {"prompt": "Hi?", "chosen": "Hello there.", "rejected": "No."}
    (root / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for _ in range(8)))
    (root / "cands.jsonl").write_text(json.dumps({"prompt": "Hi", "candidates": ["a", "b"]}))
    return root, recorded["name_or_path"]


COMMANDS = {
    "eval": "eval --model {model} --benchmark pairwise --data {root}/pairs.jsonl --out {root}/r",
    "bon": "bon --model {model} --candidates {root}/cands.jsonl --out {root}/b.jsonl",
    "serve": "serve --model {model} --port 0",
}


def _run(argv: str, tmp_path, **env):
    result_file = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", **env}
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(result_file), *argv.split()],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    return json.loads(result_file.read_text()), proc


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_moved_base_rm_is_refused_before_torch_naming_path_and_fix(command, moved, tmp_path):
    root, recorded = moved
    model = root / "runs" / "model"
    result, proc = _run(COMMANDS[command].format(model=model, root=root), tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert result["code"] == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert f"--model {model}" in lines[0]
    assert f"{recorded} does not exist" in lines[0]  # the path the model directory records
    assert "base_rm.name_or_path" in lines[0] and "--base-rm PATH" in lines[0]
    assert "Repo id" not in proc.stderr and "HF_HUB_OFFLINE" not in proc.stderr
    assert not result["torch"], "stopped only after importing torch"
    assert not (root / "r").exists() and not (root / "b.jsonl").exists()


def test_a_hub_id_missing_from_the_offline_cache_says_so(moved, tmp_path):
    root, _ = moved
    argv = COMMANDS["eval"].format(model=root / "hub-model", root=root)
    result, proc = _run(argv, tmp_path, HF_HUB_CACHE=str(tmp_path / "empty-cache"))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert result["code"] == 2 and len(lines) == 1, proc.stderr
    assert "'ebrm-tests/never-cached-rm'" in lines[0]
    assert "not in the local Hugging Face cache" in lines[0]
    assert "unset HF_HUB_OFFLINE" in lines[0] and "--base-rm PATH" in lines[0]
    assert not result["torch"]


def test_base_rm_flag_with_the_new_place_still_works(moved, tmp_path, capsys):
    """The fix the message gives works: --base-rm with where the RM is now."""
    from ebrm.cli import main

    root, _ = moved
    out = tmp_path / "report"
    argv = COMMANDS["eval"].format(model=root / "runs" / "model", root=root).split()
    argv = [*argv[:-2], "--out", str(out), "--base-rm", str(root / "elsewhere")]
    assert main([*argv, "--no-plots", "--no-progress", "--n-boot", "100"]) == 0
    assert (out / "metrics.json").is_file()


def test_the_library_refuses_the_moved_rm_in_the_same_words(moved):
    from ebrm.model import EnergyRewardModel

    root, recorded = moved
    model = EnergyRewardModel.from_pretrained(root / "runs" / "model", device="cpu")
    with pytest.raises(IncompatibleArtifactError, match=f"{recorded} does not exist.*--base-rm"):
        model.base_rm  # noqa: B018 - loading it is the point


@pytest.mark.parametrize(
    ("name", "local"),
    [("/abs/rm", True), ("./rm", True), ("~/rm", True), ("org/name", False), ("gpt2", False)],
)
def test_a_recorded_name_is_a_path_or_a_hub_id(name, local):
    assert is_local_path(name) is local


def test_a_hub_id_is_only_checked_offline(monkeypatch):
    info = {"name_or_path": "ebrm-tests/never-cached-rm"}
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    check_base_rm_found(info, "m")  # online, loading may download it: nothing to say
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(IncompatibleArtifactError, match="not in the local Hugging Face cache"):
        check_base_rm_found(info, "m")
