"""Benchmark name -> implementation: the one place that knows which benchmarks exist."""

from __future__ import annotations

from ebrm.errors import ConfigError
from ebrm.evaluation.benchmark import Benchmark
from ebrm.evaluation.names import BENCHMARKS
from ebrm.evaluation.pairwise import PairwiseBenchmark
from ebrm.evaluation.rewardbench import RewardBench
from ebrm.evaluation.rewardbench2 import RewardBench2
from ebrm.evaluation.rmbench import RMBench

_REGISTRY: dict[str, Benchmark] = {
    bench.name: bench for bench in (PairwiseBenchmark(), RMBench(), RewardBench(), RewardBench2())
}


def get_benchmark(benchmark: str | Benchmark) -> Benchmark:
    """The benchmark registered under `benchmark` (a `Benchmark` is returned as is).

    Raises:
        ConfigError: an unknown name, naming the choices.
    """
    if not isinstance(benchmark, str):
        return benchmark
    try:
        return _REGISTRY[benchmark]
    except KeyError:
        raise ConfigError(
            f"Unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}."
        ) from None
