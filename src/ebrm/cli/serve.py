"""`ebrm serve`: HTTP reward server (`/score`, OpenRLHF `/get_reward`, `/health`, `/metrics`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebrm._config import default
from ebrm.cli import _checks, _engine
from ebrm.cli._base_rm import attach, check_inputs
from ebrm.cli._options import (
    BaseRM,
    DeprecatedMode,
    Device,
    EmbedMaxLength,
    EmbedTruncationSide,
    Engine,
    reward_option,
    reward_or_mode,
)
from ebrm.cli._placement import DeviceMap, MaxMemory, OffloadFolder, placement
from ebrm.errors import ConfigError, Interrupted
from ebrm.integrations.server_config import ServerConfig
from ebrm.rm.names import DEFAULT_ENGINE


def _d(name: str):
    return default(ServerConfig, name)


# ServerConfig fields -> the flags that set them (for error messages)
_FLAGS = {"token": "--token", "max_batch_size": "--max-batch-size",
          "forward_batch_size": "--forward-batch-size", "max_wait_ms": "--max-wait-ms",
          "max_queue": "--max-queue", "max_body_bytes": "--max-body-bytes",
          "tensor_parallel_size": "--tensor-parallel-size",
          "data_parallel_size": "--data-parallel-size"}  # fmt: skip

# The engines that run the base RM in-process; only an inference engine (--engine vllm)
# splits a model over GPUs or serves several copies of it.
_SINGLE_DEVICE_ENGINES = ("transformers",)


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        model: Annotated[Path, typer.Option("--model", help="Refined-model directory.")],
        host: Annotated[
            str, typer.Option("--host", help="Interface to bind (loopback unless you expose it).")
        ] = _d("host"),
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = _d(
            "port"
        ),
        token: Annotated[
            str | None,
            typer.Option(
                "--token",
                envvar="EBRM_SERVER_TOKEN",
                help="Require 'Authorization: Bearer TOKEN' (or set EBRM_SERVER_TOKEN).",
            ),
        ] = _d("token"),
        reward: Annotated[str, reward_option("Default reward of a request.")] = _d("reward"),
        max_batch_size: Annotated[
            int, typer.Option("--max-batch-size", min=1, help="Most responses per forward pass.")
        ] = _d("max_batch_size"),
        forward_batch_size: Annotated[
            int,
            typer.Option(
                "--forward-batch-size", min=1, help="Responses per base-RM forward within a batch."
            ),
        ] = _d("forward_batch_size"),
        max_wait_ms: Annotated[
            float,
            typer.Option("--max-wait-ms", min=0, help="Longest wait for a batch to fill (ms)."),
        ] = _d("max_wait_ms"),
        max_queue: Annotated[
            int, typer.Option("--max-queue", min=1, help="Most queued responses; then 503.")
        ] = _d("max_queue"),
        max_body_bytes: Annotated[
            int, typer.Option("--max-body-bytes", min=1, help="Largest request body; then 413.")
        ] = _d("max_body_bytes"),
        special_tokens: Annotated[
            str | None,
            typer.Option(
                "--special-tokens",
                help="Comma-separated policy special tokens to strip in /get_reward "
                "(default: common ones such as <|im_end|>, </s>, <|eot_id|>).",
            ),
        ] = None,
        device: Device = None,
        device_map: DeviceMap = None,
        max_memory: MaxMemory = None,
        offload_folder: OffloadFolder = None,
        base_rm: BaseRM = None,
        max_length: EmbedMaxLength = None,
        truncation_side: EmbedTruncationSide = None,
        mode: DeprecatedMode = None,
        tensor_parallel_size: Annotated[
            int,
            typer.Option(
                "--tensor-parallel-size",
                min=1,
                help="GPUs one copy of the RM is split over; for --engine vllm only.",
            ),
        ] = _d("tensor_parallel_size"),
        data_parallel_size: Annotated[
            int,
            typer.Option(
                "--data-parallel-size",
                min=1,
                help="Copies of the RM served behind this port; for --engine vllm only "
                "(or run several `ebrm serve` replicas).",
            ),
        ] = _d("data_parallel_size"),
        engine: Engine = DEFAULT_ENGINE,
    ) -> None:
        """Serve refined rewards over HTTP, micro-batching concurrent requests.

        The port is bound before the model loads, so a busy port is reported at once;
        with --port 0 the printed address has the port the system chose.
        """
        if token is not None and not token:
            raise ConfigError("--token is empty (or EBRM_SERVER_TOKEN is set but empty); "
                              "give a non-empty token, or none.")  # fmt: skip
        _check_parallelism(engine, tensor_parallel_size, data_parallel_size)
        reward = reward_or_mode(reward, mode)
        _checks.need(model, "--model", _checks.EBRM_MODEL)
        _engine.check(engine)
        device = _engine.device_for(engine, device)
        if base_rm is not None:
            _checks.need(base_rm, "--base-rm", _checks.HF_MODEL)
        settings = {"max_length": max_length, "truncation_side": truncation_side}
        check_inputs(model, base_rm=base_rm, **settings)
        where = placement(
            device=device, device_map=device_map, max_memory=max_memory,
            offload_folder=offload_folder,
        )  # fmt: skip
        sock = _bind(host, port)

        from ebrm.integrations import server
        from ebrm.model import EnergyRewardModel

        kwargs = {} if special_tokens is None else {
            "special_tokens": tuple(t for t in special_tokens.split(",") if t)
        }  # fmt: skip
        if engine == "vllm":  # the engine batches without padding: hand it whole micro-batches
            kwargs.update(forward_batch_size=max_batch_size, forward_overhead_tokens=1e12)
        with _checks.flag_names(_FLAGS):
            config = ServerConfig(
                host=host,
                port=port,
                token=token,
                reward=reward,
                max_batch_size=max_batch_size,
                forward_batch_size=forward_batch_size,
                max_wait_ms=max_wait_ms,
                max_queue=max_queue,
                max_body_bytes=max_body_bytes,
                tensor_parallel_size=tensor_parallel_size,
                data_parallel_size=data_parallel_size,
                **kwargs,
            )
        erm = EnergyRewardModel.from_pretrained(model, device=device)
        attach(erm, base_rm=base_rm, device=device, placement=where, **settings)  # now, not later
        parallelism = {} if engine in _SINGLE_DEVICE_ENGINES else {
            "tensor_parallel_size": config.tensor_parallel_size,
            "data_parallel_size": config.data_parallel_size,
        }  # fmt: skip
        _engine.apply(erm.base_rm, engine, **parallelism)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"serving {model} on http://{shown}:{bound} (reward {reward})")
        try:
            server.run_server(server.create_app(erm, config), config, sockets=[sock])
        except Interrupted:
            # uvicorn has already finished the in-flight requests and re-raises the signal
            # it caught: a requested stop, not a failure
            typer.echo("server stopped")


def _check_parallelism(engine: str, tensor_parallel_size: int, data_parallel_size: int) -> None:
    """Refuse parallelism the engine cannot give, before anything loads."""
    if engine not in _SINGLE_DEVICE_ENGINES:
        return
    for flag, value in (
        ("--tensor-parallel-size", tensor_parallel_size),
        ("--data-parallel-size", data_parallel_size),
    ):
        if value > 1:
            raise ConfigError(
                f"{flag} {value} needs --engine vllm; the {engine} engine runs one copy of "
                "the RM (use --device-map auto for an RM larger than one GPU, or run several "
                "`ebrm serve` replicas and give the client their URLs)."
            )


def _bind(host: str, port: int):
    """A listening socket on (host, port), or a one-line error if that is impossible."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host} cannot be resolved ({exc.strerror}).") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"--host {host} --port {port} cannot be bound ({exc.strerror}); "
            + ("choose another --port or stop what uses it." if port else "choose another --host.")
        ) from exc
    sock.set_inheritable(True)
    return sock
