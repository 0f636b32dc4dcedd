"""Logging for programs built on the package (the command line, server workers): one handler on the package's
logger, and the verbosity of transformers and huggingface_hub set to match."""

from __future__ import annotations

import logging
import os

__all__ = ["configure_logging"]

_HANDLER_NAME = "lco-embed"


def configure_logging(verbose: int, quiet: bool = False) -> None:
    """Log WARNING and up (INFO with -v, DEBUG with -vv) through one handler; keep per-item and library chatter out.

    The handler sits on the ``lco_embedding`` logger alone: transformers and huggingface_hub print through their
    own handlers, so a handler on the root logger would print their lines twice. ``quiet`` turns off every
    progress bar (ours, transformers' "Loading weights", huggingface_hub's downloads). Safe to call again: the
    last call wins.
    """
    import sys

    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    ours = logging.getLogger("lco_embedding")
    if not any(h.get_name() == _HANDLER_NAME for h in ours.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        ours.addHandler(handler)
        ours.propagate = False
    ours.setLevel(level)
    # Per-item skips go to errors.jsonl and the command's own output; library chatter stays out of the way.
    logging.getLogger("lco_embedding.embedder").setLevel(logging.NOTSET if verbose else logging.ERROR)
    library_level = "debug" if verbose > 1 else "info" if verbose else "error"
    # Both libraries read these when first imported; set them directly when they already are.
    hub_level = "debug" if verbose > 1 else "info" if verbose else "warning"
    if verbose:
        os.environ["TRANSFORMERS_VERBOSITY"], os.environ["HF_HUB_VERBOSITY"] = library_level, hub_level
    else:  # a level the user set in the environment stands
        library_level = os.environ.setdefault("TRANSFORMERS_VERBOSITY", library_level)
        os.environ.setdefault("HF_HUB_VERBOSITY", hub_level)
    if quiet:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity(getattr(logging, library_level.upper(), logging.ERROR))
        if quiet:
            transformers_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules and quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
