"""Where a checkpoint's files come from: a local folder, the hub cache, or the Hugging Face hub — decided once, fast.

:func:`locate_checkpoint` looks, in this order, for an existing local folder, then for the hub: one short request
for ``config.json``, the file that decides everything. When the hub cannot be reached (no network, DNS failure,
``HF_HUB_OFFLINE=1``, ``local_files_only=True``) the cached copy is used if there is one, and every later file of
that load is read from the cache too (``local_files_only``), so a machine without network never waits on
huggingface_hub's retries. When there is no copy, one :class:`CheckpointNotFoundError` says what is wrong and how
to fix it.

Does not download weights itself (transformers does, with the hub arguments this module hands back).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lco_embedding.core.errors import CheckpointNotFoundError

__all__ = ["LocatedCheckpoint", "PROBE_TIMEOUT", "locate_checkpoint", "looks_like_path"]

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0
"""Seconds the one request for ``config.json`` may take before the hub counts as unreachable (``HF_HUB_ETAG_TIMEOUT``
overrides it when set)."""

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SNAPSHOT = re.compile(r"[/\\]snapshots[/\\]([0-9a-f]{40})[/\\]")
_FIXES = (
    "Fixes: give the path of a local checkpoint folder; or download the model where the hub is reachable "
    "(`hf download {name}`) and copy the cache (~/.cache/huggingface/hub, or HF_HOME) here, then use "
    "HF_HUB_OFFLINE=1 or local_files_only=True; or check the network and proxy settings (HF_ENDPOINT)."
)


@dataclass(frozen=True)
class LocatedCheckpoint:
    """A checkpoint whose ``config.json`` has been found.

    Attributes:
        name: What the caller gave (hub id or folder).
        config_path: The local path of its ``config.json``.
        folder: The local folder, for a folder checkpoint; None for a hub id.
        hub_kwargs: The hub arguments for every further file of this checkpoint (``local_files_only=True`` when
            the hub is out of reach or turned off).
        commit: The hub commit the files come from (None for a local folder).
    """

    name: str
    config_path: str
    folder: str | None
    hub_kwargs: dict[str, Any] = field(default_factory=dict)
    commit: str | None = None

    @property
    def source(self) -> str:
        """What to hand to ``from_pretrained``: the folder, or the hub id."""
        return self.folder or self.name


def looks_like_path(name: str) -> bool:
    """True when ``name`` can only be meant as a local path: it starts with ``.``, ``/``, ``~`` or a drive letter,
    or holds a path separator without being of the hub's ``org/name`` form."""
    if name.startswith((".", "/", "~", "\\")) or re.match(r"^[A-Za-z]:[/\\]", name):
        return True
    separators = {os.sep, os.altsep or os.sep, "\\"}
    return any(s in name for s in separators) and not _REPO_ID.match(name)


def locate_checkpoint(
    name: str,
    *,
    revision: str | None = None,
    cache_dir: str | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> LocatedCheckpoint:
    """Find ``config.json`` of a checkpoint: an existing local folder, else the hub (falling back to its cache).

    Args:
        name: Local folder or hub id.
        revision, cache_dir, token, local_files_only: The hub arguments.

    Returns:
        A :class:`LocatedCheckpoint` whose ``hub_kwargs`` every further file of the checkpoint must be read with.

    Raises:
        CheckpointNotFoundError: No such local folder, a folder without ``config.json``, a hub id that is neither
            reachable nor cached, or a hub repository that does not exist or has no ``config.json``.

    Example:
        >>> locate_checkpoint("./no-such-folder")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lco_embedding.core.errors.CheckpointNotFoundError: no such local folder: ...
    """
    if not isinstance(name, (str, os.PathLike)) or not str(name):
        raise TypeError(f"model_name_or_path must be a hub id or a folder path, got {name!r}.")
    name = os.fspath(name)
    hub_kwargs = {"revision": revision, "cache_dir": cache_dir, "token": token, "local_files_only": local_files_only}
    expanded = Path(os.path.expanduser(name))
    if expanded.is_dir():
        return _local(name, expanded, hub_kwargs)
    if expanded.exists():
        raise CheckpointNotFoundError(
            f"{name!r} is a file, not a checkpoint folder: give the folder that holds config.json and the weights."
        )
    if looks_like_path(name):
        raise CheckpointNotFoundError(_no_such_folder(name, expanded))
    if not _REPO_ID.match(name) or ".." in name or "--" in name:
        raise CheckpointNotFoundError(
            f"{name!r} is neither an existing local folder nor a hub model id (org/name, e.g. "
            "'LCO-Embedding/LCO-Embedding-Omni-3B')."
        )
    return _hub(name, hub_kwargs)


def _local(name: str, folder: Path, hub_kwargs: dict[str, Any]) -> LocatedCheckpoint:
    config = folder / "config.json"
    if not config.is_file():
        raise CheckpointNotFoundError(_not_a_checkpoint(name, folder))
    absolute = str(folder.resolve())
    return LocatedCheckpoint(name, str(config), absolute, {**hub_kwargs, "local_files_only": True})


def _listing(folder: Path, limit: int = 12) -> str:
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as e:
        return f"(cannot list it: {e.strerror or e})"
    if not entries:
        return "nothing: it is empty"
    shown = [p.name + ("/" if p.is_dir() else "") for p in entries[:limit]]
    more = f", ... ({len(entries) - limit} more)" if len(entries) > limit else ""
    return ", ".join(shown) + more


def _not_a_checkpoint(name: str, folder: Path) -> str:
    inside = [p.parent for p in folder.glob("*/config.json")] + [p.parent for p in folder.glob("*/*/config.json")]
    hint = f" Did you mean {str(inside[0])!r}, which has one?" if inside else ""
    return (
        f"{name!r} is a folder but not a checkpoint: it has no config.json. It holds {_listing(folder)}.{hint} Give "
        "the folder that holds config.json, the *.safetensors weights and the processor files (as written by "
        "save_pretrained or downloaded from the hub)."
    )


def _no_such_folder(name: str, expanded: Path) -> str:
    absolute = Path(os.path.abspath(expanded))
    message = f"no such local folder: {str(absolute)!r}"
    if str(absolute) != name:
        message += f" (from {name!r})"
    parent = absolute.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    if parent != absolute.parent:
        message += f"; {str(parent)!r} is the nearest folder that exists"
    else:
        try:
            siblings = [p.name for p in parent.iterdir() if p.is_dir()]
        except OSError:
            siblings = []
        close = difflib.get_close_matches(absolute.name, siblings, n=3, cutoff=0.6)
        if close:
            message += f"; did you mean {' or '.join(repr(str(parent / c)) for c in close)}?"
    return message + ". Check the path, or give a hub id such as 'LCO-Embedding/LCO-Embedding-Omni-3B'."


def _probe_timeout() -> float:
    configured = os.environ.get("HF_HUB_ETAG_TIMEOUT")
    try:
        return float(configured) if configured else PROBE_TIMEOUT
    except ValueError:
        return PROBE_TIMEOUT


def _is_offline(local_files_only: bool) -> bool:
    if local_files_only:
        return True
    from huggingface_hub import constants

    is_offline = getattr(constants, "is_offline_mode", None)
    return bool(is_offline() if callable(is_offline) else constants.HF_HUB_OFFLINE)


def _hub(name: str, hub_kwargs: dict[str, Any]) -> LocatedCheckpoint:
    if _is_offline(hub_kwargs["local_files_only"]):
        why = "local_files_only=True" if hub_kwargs["local_files_only"] else "HF_HUB_OFFLINE is set"
        return _cached(name, hub_kwargs, f"hub access is off ({why})")
    problem = _probe(name, hub_kwargs)
    if problem is not None:
        return _cached(name, hub_kwargs, f"the Hugging Face hub could not be reached ({problem})")
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(
        name,
        "config.json",
        revision=hub_kwargs["revision"],
        cache_dir=hub_kwargs["cache_dir"],
        token=hub_kwargs["token"],
        etag_timeout=_probe_timeout(),
    )
    return LocatedCheckpoint(name, path, None, dict(hub_kwargs), _commit(path))


def _probe(name: str, hub_kwargs: dict[str, Any]) -> str | None:
    """One request, no retries, for the hub's ``config.json`` of ``name``: None when it is there, else why the hub
    could not be reached. Raises when the hub answered that there is no such model, revision or file."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    url = hf_hub_url(name, "config.json", revision=hub_kwargs["revision"])
    try:
        get_hf_file_metadata(url, token=hub_kwargs["token"], timeout=_probe_timeout())
    except GatedRepoError as e:
        raise CheckpointNotFoundError(
            f"{name!r} is a gated model on the hub: accept its terms on huggingface.co, then log in (`hf auth "
            "login`) or pass token=... (HF_TOKEN)."
        ) from e
    except RepositoryNotFoundError as e:
        raise CheckpointNotFoundError(
            f"no model {name!r} on the Hugging Face hub (or it is private: log in with `hf auth login` or pass "
            "token=...). Check the name, e.g. 'LCO-Embedding/LCO-Embedding-Omni-3B', or give a local folder."
        ) from e
    except RevisionNotFoundError as e:
        raise CheckpointNotFoundError(
            f"{name!r} has no revision {hub_kwargs['revision']!r} on the hub: give a branch, tag or commit it has."
        ) from e
    except EntryNotFoundError as e:
        raise CheckpointNotFoundError(
            f"{name!r} on the hub has no config.json: it is not a transformers checkpoint that lco-embedding can load."
        ) from e
    except OfflineModeIsEnabled:
        return "HF_HUB_OFFLINE is set"
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status is not None and (status >= 500 or status == 429):
            return f"HTTP {status}"
        raise CheckpointNotFoundError(f"the hub refused {name!r}: {str(e).splitlines()[0]}") from e
    except Exception as e:
        if _is_network_error(e):
            return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'}"
        raise
    return None


def _is_network_error(error: BaseException) -> bool:
    if isinstance(error, (OSError, TimeoutError)):
        return True
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"TransportError", "TimeoutException", "NetworkError", "RequestError", "ConnectionError"})


def _cached(name: str, hub_kwargs: dict[str, Any], why: str) -> LocatedCheckpoint:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = hf_hub_download(
            name,
            "config.json",
            revision=hub_kwargs["revision"],
            cache_dir=hub_kwargs["cache_dir"],
            local_files_only=True,
        )
    except LocalEntryNotFoundError:
        raise CheckpointNotFoundError(
            f"cannot load {name!r}: {why}, and it is not in the local hub cache. {_FIXES.format(name=name)}"
        ) from None
    if not hub_kwargs["local_files_only"]:
        logger.warning("Loading %s from the local hub cache: %s.", name, why)
    return LocatedCheckpoint(name, path, None, {**hub_kwargs, "local_files_only": True}, _commit(path))


def _commit(path: str) -> str | None:
    match = _SNAPSHOT.search(str(path))
    return match.group(1) if match else None
