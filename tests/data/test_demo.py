"""demo_pairs: download (faked here), safe extraction from the sdist, checksum, caching."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile

import pytest

from ebrm.data import demo, demo_pairs
from ebrm.errors import CorruptArtifactError, EbrmError

ROWS = [
    {
        "conversations": [{"from": "human", "value": f"question {i}"}],
        "chosen": {"from": "gpt", "value": f"good {i}"},
        "rejected": {"from": "gpt", "value": f"bad {i}"},
    }
    for i in range(4)
]
CONTENT = json.dumps(ROWS).encode()


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _make_sdist(path, *, member_data=CONTENT, extra=()):
    with tarfile.open(path, "w:gz") as tar:
        _add_file(tar, "llamafactory-0.9.5/README.md", b"readme")
        for name, data in extra:
            _add_file(tar, name, data)
        if member_data is not None:
            _add_file(tar, demo.MEMBER, member_data)
    return path


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    """Replace the pip download with a copy of a fake sdist; count the calls."""
    sdist = _make_sdist(tmp_path / "src.tar.gz")
    calls = []

    def fake_download(dest):
        calls.append(dest)
        return shutil.copy(sdist, dest / "llamafactory-0.9.5.tar.gz")

    monkeypatch.setattr(demo, "download_sdist", fake_download)
    monkeypatch.setattr(demo, "DEMO_SHA256", hashlib.sha256(CONTENT).hexdigest())
    return sdist, calls


def test_downloads_once_then_uses_the_cache(tmp_path, fake_pip):
    _, calls = fake_pip
    cache = tmp_path / "cache"
    pairs = demo_pairs(cache_dir=cache)
    assert [(p.chosen.prompt_text, p.chosen.response, p.rejected.response) for p in pairs] == [
        (r["conversations"][0]["value"], r["chosen"]["value"], r["rejected"]["value"]) for r in ROWS
    ]
    assert (cache / "llamafactory-0.9.5" / "dpo_en_demo.json").read_bytes() == CONTENT
    assert demo_pairs(cache_dir=cache) == pairs
    assert len(calls) == 1


def test_env_var_sets_the_default_cache(tmp_path, fake_pip, monkeypatch):
    monkeypatch.setenv("EBRM_CACHE", str(tmp_path / "env-cache"))
    demo_pairs()
    assert (tmp_path / "env-cache" / "llamafactory-0.9.5" / "dpo_en_demo.json").is_file()


def test_corrupt_cache_is_fetched_again(tmp_path, fake_pip):
    _, calls = fake_pip
    cached = tmp_path / "llamafactory-0.9.5" / "dpo_en_demo.json"
    cached.parent.mkdir(parents=True)
    cached.write_text("[]")
    assert len(demo_pairs(cache_dir=tmp_path)) == len(ROWS)
    assert len(calls) == 1 and cached.read_bytes() == CONTENT


def test_checksum_mismatch_is_refused_and_not_cached(tmp_path, fake_pip, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_SHA256", "0" * 64)
    with pytest.raises(CorruptArtifactError, match="SHA-256"):
        demo_pairs(cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "llamafactory-0.9.5" / "dpo_en_demo.json").exists()


def test_extraction_reads_only_the_member_and_never_writes_other_paths(tmp_path):
    sdist = _make_sdist(
        tmp_path / "evil.tar.gz", extra=[("../outside.txt", b"x"), ("/abs.txt", b"y")]
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    assert demo.extract_member(sdist) == CONTENT
    assert not (tmp_path / "outside.txt").exists() and not list(workdir.iterdir())


def test_extraction_refuses_links_and_missing_members(tmp_path):
    with pytest.raises(CorruptArtifactError, match="has no member"):
        demo.extract_member(_make_sdist(tmp_path / "a.tar.gz", member_data=None))
    link_sdist = tmp_path / "b.tar.gz"
    with tarfile.open(link_sdist, "w:gz") as tar:
        info = tarfile.TarInfo(demo.MEMBER)
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(CorruptArtifactError, match="not a regular file"):
        demo.extract_member(link_sdist)
    (tmp_path / "c.tar.gz").write_bytes(b"garbage")
    with pytest.raises(CorruptArtifactError, match="not a readable"):
        demo.extract_member(tmp_path / "c.tar.gz")


def test_pip_failure_says_how_to_pass_data(tmp_path, monkeypatch):
    def failing_run(command, **kwargs):
        assert command[:3] == [sys.executable, "-m", "pip"]
        assert "--no-binary" in command and "llamafactory==0.9.5" in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: network is unreachable")

    monkeypatch.setattr(demo.subprocess, "run", failing_run)
    with pytest.raises(EbrmError, match="network is unreachable.*--data"):
        demo_pairs(cache_dir=tmp_path)


def test_missing_python_says_how_to_pass_data(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(EbrmError, match="Could not run pip.*--data"):
        demo.download_sdist(tmp_path)


@pytest.mark.slow
def test_real_download_from_pypi(tmp_path):
    pairs = demo_pairs(cache_dir=tmp_path)
    assert len(pairs) == 300
    assert all(p.chosen.response and p.rejected.response for p in pairs)
    assert all(p.meta["layout"] == "sharegpt" for p in pairs)
