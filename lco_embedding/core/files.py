"""What may be opened as a media or text file: regular files only, and why not otherwise. No heavy imports.

Opening a FIFO blocks until a writer comes (forever, in a folder of inputs); a socket, a device or a folder is not
media either; a dangling symbolic link has nothing behind it. :func:`file_problem` says which, without opening
anything, so every caller (the embedder's preprocessors, the corpus job's records, the server) gives the same
per-item error instead of blocking or aborting. :func:`file_url_path` turns ``file://`` URLs into paths the same
way everywhere.
"""

from __future__ import annotations

import os
import stat
from urllib.parse import unquote, urlparse

__all__ = ["file_problem", "file_url_path", "local_file"]


def file_url_path(text: str) -> str:
    """The local path a ``file://`` URL names (percent-escapes decoded when the raw path does not exist), or
    ``text`` unchanged when it is not a ``file://`` URL.

    Example:
        >>> file_url_path("file:///data/My%20Photos/cat.png")
        '/data/My Photos/cat.png'
    """
    if not text.startswith("file://"):
        return text
    raw = text[7:]
    if os.path.lexists(raw):
        return raw
    parsed = urlparse(text)
    host = f"//{parsed.netloc}" if parsed.netloc not in ("", "localhost") else ""
    return unquote(host + parsed.path) if parsed.path else raw


def local_file(text: str) -> str:
    """The local path ``text`` names: a ``file://`` URL decoded (:func:`file_url_path`), and trailing whitespace (a
    line read with its newline) dropped only when the path with it does not exist and the path without it does.
    URLs and data URIs come back unchanged."""
    if text.startswith(("http://", "https://", "data:")):
        return text
    path = file_url_path(text)
    stripped = path.rstrip()
    if stripped != path and not os.path.lexists(path) and os.path.lexists(stripped):
        return stripped
    return path


def file_problem(path: str) -> str | None:
    """Why ``path`` cannot be read as a file (a sentence for an error message), or None when it is a readable
    regular file (or a symbolic link to one)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"{path!r} is a broken symbolic link (to {os.readlink(path)!r}): nothing is behind it."
        hint = "" if os.path.isabs(path) else f" (relative paths start at {os.getcwd()!r})"
        return f"file not found: {path!r}. Check the path{hint}."
    except PermissionError:
        return f"{path!r} cannot be read: permission denied."
    except (OSError, ValueError) as e:  # a name too long, an embedded NUL, a loop of links, ...
        return f"{path!r} cannot be opened ({e.strerror if isinstance(e, OSError) and e.strerror else e})."
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        return f"{path!r} is a folder, not a file."
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file"
        )
        return f"{path!r} is {kind}; only regular files are read (a pipe or device could block forever)."
    if not os.access(path, os.R_OK):
        return f"{path!r} cannot be read: permission denied."
    return None
