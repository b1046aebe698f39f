"""Security: loopback by default, the token guards every route, nothing is unpickled or
evaluated, and no request field is ever used as a file path."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import httpx
import pytest

from ebrm.integrations.server import ServerConfig, create_app
from tests.fakes import FakeScorer
from tests.integrations.serving import running_server
from tests.reliability import _report

SRC = Path(__file__).resolve().parents[2] / "src" / "ebrm"
ROUTES = [("POST", "/score"), ("POST", "/get_reward"), ("GET", "/health"), ("GET", "/metrics")]
ROUTES += [("GET", "/score"), ("GET", "/nope"), ("PUT", "/health"), ("GET", "/docs")]


# ---- binding ------------------------------------------------------------------------------


def test_server_config_binds_loopback_by_default():
    assert ServerConfig().host == "127.0.0.1"


def test_ebrm_serve_binds_loopback_by_default(tmp_path, tiny_rm_dir, monkeypatch):
    import uvicorn

    from ebrm.cli import main
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    model = make_tiny_ebrm(tmp_path / "model", tiny_rm_dir)
    bound = {}

    def fake_run(self, sockets=None):  # record what uvicorn would bind, do not serve
        bound["host"], bound["port"] = self.config.host, self.config.port

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    assert main(["serve", "--model", str(model), "--device", "cpu"]) == 0
    assert bound == {"host": "127.0.0.1", "port": 8000}
    assert main(["serve", "--model", str(model), "--device", "cpu", "--host", "0.0.0.0"]) == 0
    assert bound["host"] == "0.0.0.0"  # only when asked


# ---- token --------------------------------------------------------------------------------


def test_token_is_required_on_every_route():
    """Decision: /health and /metrics need the token too (they reveal load and usage)."""
    token = "s3cret-token"
    app = create_app(FakeScorer(), ServerConfig(token=token, max_wait_ms=0))
    body = {"/score": [{"prompt": "p", "response": "r"}], "/get_reward": {"query": ["q"]}}
    wrong = [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": token},  # no "Bearer "
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": "Bearer"},
        {"X-Token": token},
    ]
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        for method, path in ROUTES:
            kwargs = {"json": body[path]} if path in body else {}
            for headers in wrong:
                resp = client.request(method, path, headers=headers, **kwargs)
                assert resp.status_code == 401, (method, path, headers, resp.text)
                assert resp.headers["www-authenticate"] == "Bearer"
                _report.count("security: requests without the right token", "401")
            for params in ({"token": "wrong"}, {"token": ""}, {"tok": token}):
                resp = client.request(method, path, params=params, **kwargs)
                assert resp.status_code == 401, (method, path, params)
                _report.count("security: requests without the right token", "401")
            ok = client.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
            assert ok.status_code != 401
            via_query = client.request(method, path, params={"token": token}, **kwargs)
            assert via_query.status_code == ok.status_code
        assert client.post("/score", json=body["/score"], params={"token": token}).json()["results"]


# ---- nothing unpickled, nothing evaluated --------------------------------------------------


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_no_pickle_eval_exec_or_unsafe_torch_load_in_src():
    problems = []
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        where = file.relative_to(SRC.parent)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                if name.split(".")[0] in {
                    "pickle",
                    "cPickle",
                    "dill",
                    "joblib",
                    "marshal",
                    "shelve",
                }:
                    problems.append(f"{where}:{node.lineno} imports {name}")
        for call, func in _calls(tree):
            keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
            if func in {"eval", "exec", "builtins.eval", "builtins.exec", "compile"}:
                problems.append(f"{where}:{call.lineno} calls {func}()")
            torch_load = func.endswith("torch.load") or (
                func == "load" and "weights_only" in keywords
            )
            if torch_load and keywords.get("weights_only") != "True":
                problems.append(f"{where}:{call.lineno} torch.load without weights_only=True")
            if keywords.get("allow_pickle") == "True":
                problems.append(f"{where}:{call.lineno} allow_pickle=True")
            if keywords.get("trust_remote_code") == "True":
                problems.append(f"{where}:{call.lineno} trust_remote_code=True")
    assert not problems, "\n".join(problems)
    _report.count(
        "security: source files scanned for pickle/eval/exec/torch.load", "clean", len(files)
    )


def test_base_rm_does_not_trust_remote_code_by_default():
    from ebrm.rm import BaseRewardModel

    default = inspect.signature(BaseRewardModel.from_pretrained).parameters["trust_remote_code"]
    assert default.default is False


# ---- request data is text, never a path ---------------------------------------------------

SERVER_MODULES = ["server.py", "_http.py", "batcher.py", "openrlhf.py"]
FILE_ACCESS = {"open", "Path", "pathlib.Path", "os.open", "os.path.join", "os.path.exists"}
FILE_ACCESS |= {"io.open", "load_scorer", "from_pretrained", "safe_open", "load_file"}


@pytest.mark.parametrize("module", SERVER_MODULES)
def test_request_handling_code_never_touches_files(module):
    tree = ast.parse((SRC / "integrations" / module).read_text(encoding="utf-8"))
    touched = [
        f"{module}:{call.lineno} {func}()"
        for call, func in _calls(tree)
        if func in FILE_ACCESS or func.split(".")[-1] in {"read_text", "read_bytes", "open"}
    ]
    assert not touched, touched


PATHS = ["../../etc/passwd", "/etc/passwd", "~/.ssh/id_rsa", "file:///etc/shadow", "C:\\x.txt"]


def test_path_like_fields_are_scored_as_text(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    scorer = FakeScorer()
    app = create_app(scorer, ServerConfig(max_wait_ms=0))
    items = [{"prompt": p, "response": p} for p in [*PATHS, str(secret)]]
    items.append({"prompt": [{"role": "user", "content": str(secret)}], "response": "../x"})
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        resp = client.post("/score", json=items)
        assert resp.status_code == 200
        reward = client.post(
            "/get_reward", json={"query": [str(secret), "/etc/passwd"], "prompts": ["", ""]}
        )
        assert reward.status_code == 200
    seen = [(conv.messages[-1][1], conv.response) for conv in scorer.seen]
    expected = [(it["prompt"], it["response"]) for it in items[:-1]] + [(str(secret), "../x")]
    # exactly the strings, not file contents (the server scores a batch in length order)
    assert sorted(seen[: len(expected)]) == sorted(expected)
    assert not any("TOP-SECRET" in m or "TOP-SECRET" in r for m, r in seen)
    assert not any("root:" in m or "root:" in r for m, r in seen)  # /etc/passwd never read
    _report.count("security: path-like request fields", "treated as text", len(items) + 2)
