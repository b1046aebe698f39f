"""User-facing error types.

Every error a user can cause (bad data, bad option, wrong artifact) is an `EbrmError`
whose message says what was given, why it is wrong and how to fix it. The CLI prints
such errors as one line and exits with status 2; anything else is a bug.
"""

from __future__ import annotations


class EbrmError(Exception):
    """Base class of the errors a user can fix."""


class DataFormatError(EbrmError, ValueError):
    """Input data is malformed or of an unknown layout (names file, row and field)."""


class ConfigError(EbrmError, ValueError):
    """An option or configuration value is invalid."""


class IncompatibleArtifactError(EbrmError):
    """An artifact (feature store, refined model) does not match what it is used with."""


class CorruptArtifactError(EbrmError):
    """An artifact on disk is truncated, corrupted or fails its checksum."""


class ArtifactFileMissingError(CorruptArtifactError):
    """A file an artifact needs is not there (names the file and what writes it)."""


class ArtifactJSONError(CorruptArtifactError):
    """An artifact's JSON file is not UTF-8 JSON, not an object, or a field has the wrong
    type (names the file and the field)."""


class ArtifactFormatError(IncompatibleArtifactError):
    """A JSON file's `format` field names another kind of file (names both)."""


class ArtifactVersionError(IncompatibleArtifactError):
    """A JSON file was written in a newer format version than this ebrm reads."""


class ArtifactChecksumError(CorruptArtifactError):
    """A binary file does not match the sha256 its JSON companion records."""


class MissingDependencyError(EbrmError, ImportError):
    """An optional dependency is not installed; the message has the pip command."""


def require(module: str, extra: str):
    """Import an optional dependency or raise `MissingDependencyError` with a pip hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"'{module}' is needed for this feature but is not installed. "
            f"Install it with: pip install 'ebrm[{extra}]'"
        ) from exc


class Interrupted(Exception):
    """The run was stopped by SIGINT/SIGTERM; the message says what was kept.

    Not an `EbrmError` (nothing is wrong with the input): the CLI prints the message as
    one line and exits with 128 + the signal number.
    """

    def __init__(self, message: str, *, signum: int = 2) -> None:
        super().__init__(message)
        self.signum = signum
