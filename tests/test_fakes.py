"""Every test fake (tests/fakes.py) against the library interface it stands in for.

A fake that drifts from its Protocol lets tests pass while production breaks (or pushes
production code into `inspect.signature`/`hasattr` workarounds). Here each fake must have
every member of its Protocol, and each method must be callable as the Protocol declares:
the same parameter names, kinds and defaults (extra parameters only with defaults). The
real classes are held to the same Protocols, so the three cannot drift apart.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

import pytest

from ebrm.evaluation.protocols import EmbeddingRM, RefiningModel, TextRefiningModel
from ebrm.features.plan import EmbeddingModel
from ebrm.integrations._common import Scorer
from ebrm.model import EnergyRewardModel
from ebrm.rm.adapter import BaseRewardModel
from tests.fakes import FakeModel, FakeRM, FakeScorer, ParsingRM, SeededRM

_SKIP = {object, Protocol}


def protocol_members(protocol: type) -> tuple[dict[str, Any], set[str]]:
    """(methods by name, data members and properties) declared by `protocol` and its bases."""
    methods: dict[str, Any] = {}
    attributes: set[str] = set()
    for klass in reversed(protocol.__mro__):
        if klass in _SKIP or not getattr(klass, "_is_protocol", False):
            continue
        attributes |= set(getattr(klass, "__annotations__", {}))
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(value, property):
                attributes.add(name)
            elif callable(value):
                methods[name] = value
    return methods, attributes - set(methods)


def call_mismatches(declared, actual) -> list[str]:
    """How `actual` cannot be called as `declared` says (both unbound; `self` dropped)."""
    want = list(inspect.signature(declared).parameters.values())[1:]
    have = dict(list(inspect.signature(actual).parameters.items())[1:])
    problems = []
    for p in want:
        q = have.pop(p.name, None)
        if q is None:
            problems.append(f"lacks parameter {p.name!r}")
        elif q.kind != p.kind:
            problems.append(f"{p.name!r} is {q.kind.description}, not {p.kind.description}")
        elif q.default != p.default:
            problems.append(f"{p.name!r} defaults to {q.default!r}, not {p.default!r}")
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    for q in have.values():
        if q.default is inspect.Parameter.empty and q.kind not in variadic:
            problems.append(f"needs extra parameter {q.name!r}")
    return problems


def conformance(cls: type, protocol: type, instance: Any = None) -> list[str]:
    methods, attributes = protocol_members(protocol)
    problems = []
    for name, declared in methods.items():
        actual = getattr(cls, name, None)
        if actual is None:
            problems.append(f"{cls.__name__} lacks method {name}()")
        else:
            problems += [f"{cls.__name__}.{name}: {m}" for m in call_mismatches(declared, actual)]
    if instance is not None:
        problems += [
            f"{cls.__name__} lacks attribute {name!r}"
            for name in sorted(attributes)
            if not hasattr(instance, name)
        ]
    return problems


FAKES = [
    (FakeScorer, Scorer),
    (FakeRM, EmbeddingModel),
    (SeededRM, EmbeddingRM),
    (ParsingRM, EmbeddingRM),
    (FakeModel, RefiningModel),
    (FakeModel, TextRefiningModel),
]
REAL = [
    (EnergyRewardModel, Scorer),
    (EnergyRewardModel, TextRefiningModel),
    (BaseRewardModel, EmbeddingModel),
    (BaseRewardModel, EmbeddingRM),
]


@pytest.mark.parametrize(
    ("fake", "protocol"), FAKES, ids=[f"{f.__name__}-{p.__name__}" for f, p in FAKES]
)
def test_each_fake_implements_its_protocol(fake, protocol):
    instance = fake()
    assert not conformance(fake, protocol, instance)
    if getattr(protocol, "_is_runtime_protocol", False):
        assert isinstance(instance, protocol)


@pytest.mark.parametrize(
    ("cls", "protocol"), REAL, ids=[f"{c.__name__}-{p.__name__}" for c, p in REAL]
)
def test_the_real_classes_implement_the_same_protocols(cls, protocol):
    assert not conformance(cls, protocol)


def test_the_check_catches_a_drifted_fake():
    class Drifted:
        def score(self, convs, *, size=16):  # renamed keyword
            return None

    class Stricter:
        def score(self, convs, needed, *, batch_size=16):  # extra required parameter
            return None

    assert conformance(Drifted, Scorer) == ["Drifted.score: lacks parameter 'batch_size'"]
    assert conformance(Stricter, Scorer) == ["Stricter.score: needs extra parameter 'needed'"]
    assert sorted(conformance(object, EmbeddingModel, object())) == [
        "object lacks attribute 'hidden_size'",
        "object lacks method embed_texts()",
        "object lacks method format()",
        "object lacks method provenance()",
    ]
