"""The one validation layer of ebrm's config dataclasses.

Every config dataclass validates its fields in `__post_init__` with these checks, so each
bad value gets the same message, in scikit-learn's style:

    The 'num_negatives' parameter of TrainConfig must be an int >= 1. Got 0 instead.

followed by a fix where one helps. Each check reads the field from the instance, so a
`__post_init__` is a list of one-line checks. `from_dict` and `to_dict` are the same
everywhere: JSON-ready dicts (tuples as lists), and unknown keys from a newer or older
file are dropped with one warning that names them (never silently).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo:
    ...     steps: int = 1
    ...     def __post_init__(self):
    ...         check_int(self, "steps", low=1)
    >>> Demo(steps=0)
    Traceback (most recent call last):
    ...
    ebrm.errors.ConfigError: The 'steps' parameter of Demo must be an int >= 1. Got 0 instead.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ebrm.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def invalid(
    owner: object, name: str, expected: str, value: Any, *, hint: str | None = None
) -> ConfigError:
    """The `ConfigError` for field `name` of `owner` (an instance or a class name).

    Args:
        owner: the config instance (its class names the message) or a name.
        name: the parameter.
        expected: what it must be, completing "must be ..." (e.g. "an int >= 1").
        value: what was given.
        hint: how to fix it, appended as a sentence.
    """
    where = owner if isinstance(owner, str) else type(owner).__name__
    message = f"The '{name}' parameter of {where} must be {expected}. Got {value!r} instead."
    return ConfigError(f"{message} {hint}" if hint else message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def _inside(
    value: float, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> bool:
    if low is not None and (value <= low if low_open else value < low):
        return False
    return not (high is not None and (value >= high if high_open else value > high))


def _check_number(
    obj: object,
    name: str,
    is_type: Callable[[Any], bool],
    kind: str,
    interval: tuple[float | None, float | None, bool, bool],
    optional: bool,
    hint: str | None,
) -> None:
    """The shared body of `check_int` / `check_float`: type, then (low, high, open, open)."""
    value = getattr(obj, name)
    if optional and value is None:
        return
    if not (is_type(value) and _inside(value, *interval)):
        expected = f"{kind}{_bounds(*interval)}"
        raise invalid(obj, name, f"None or {expected}" if optional else expected, value, hint=hint)


def check_int(
    obj: object,
    name: str,
    *,
    low: int | None = None,
    high: int | None = None,
    optional: bool = False,
    hint: str | None = None,
) -> None:
    """`obj.name` is an int (not a bool) in [low, high]; None too when `optional`."""
    _check_number(obj, name, _is_int, "an int", (low, high, False, False), optional, hint)


def check_float(
    obj: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
    hint: str | None = None,
) -> None:
    """`obj.name` is a finite real number in the interval; None too when `optional`."""
    interval = (low, high, low_open, high_open)
    _check_number(obj, name, _is_real, "a finite float", interval, optional, hint)


def check_choice(
    obj: object, name: str, choices: Iterable[Any], *, hint: str | None = None
) -> None:
    """`obj.name` is one of `choices`."""
    choices = tuple(choices)
    value = getattr(obj, name)
    if value not in choices:
        raise invalid(obj, name, f"one of {', '.join(map(str, choices))}", value, hint=hint)


def check_widths(obj: object, name: str) -> None:
    """`obj.name` is a non-empty sequence of ints >= 1 (layer widths)."""
    value = getattr(obj, name)
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Iterable)
        or not (widths := tuple(value))
        or not all(_is_int(w) and w >= 1 for w in widths)
    ):
        raise invalid(obj, name, "a non-empty sequence of ints >= 1", value)


def check_bool(obj: object, name: str) -> None:
    """`obj.name` is True or False."""
    value = getattr(obj, name)
    if not isinstance(value, bool):
        raise invalid(obj, name, "True or False", value)


def to_dict(config: object) -> dict[str, Any]:
    """A config's fields as a JSON-ready dict (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build config class `cls` from a dict such as `to_dict` wrote.

    Keys `cls` does not know (a file written by another ebrm version) are dropped with one
    warning naming them; a missing key takes the field's default.

    Raises:
        ConfigError: `data` is not a mapping, or a value fails validation.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{cls.__name__} needs a JSON object of settings; got {data!r}.")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        logger.warning(
            "%s: ignoring unknown keys %s (written by another ebrm version?)",
            cls.__name__,
            ", ".join(map(repr, unknown)),
        )
    return cls(**{k: v for k, v in data.items() if k in known})


def default(source: type | Callable[..., Any], name: str) -> Any:
    """The default of field `name` of config class `source`, or of keyword `name` of a function.

    The one source of truth for a default: the CLI's options take theirs from it (configs
    importable without torch), so no command spells a default out.

    Raises:
        KeyError: no such field/keyword, or it has no default.
    """
    fields = getattr(source, "__dataclass_fields__", None)
    if fields is None:
        value = inspect.signature(source).parameters[name].default
        if value is inspect.Parameter.empty:
            raise KeyError(f"{source.__qualname__}'s {name!r} has no default")
        return value
    field = fields[name]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise KeyError(f"{source.__name__}.{name} has no default")
