"""`ebrm demo` command wiring."""

from __future__ import annotations

from ebrm.cli import main


def test_demo_help(capsys):
    assert main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--out", "--data", "--seed", "--device", "--full-finetune", "--preset"):
        assert option in text


def test_demo_unknown_preset_is_a_user_error(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path / "run"), "--preset", "nope"])
    assert code == 2
    assert "Unknown preset 'nope'" in capsys.readouterr().err
