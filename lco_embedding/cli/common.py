"""What the ``lco-embed`` commands share: logging set-up, the model options, model loading, and output tables."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import click

from lco_embedding.corpus.job import DEFAULT_MODEL

__all__ = ["configure_logging", "format_table", "load_embedder", "model_options", "shorten"]


def configure_logging(verbose: int) -> None:
    """Log WARNING and up (INFO with -v, DEBUG with -vv); keep per-item and transformers chatter out."""
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    logging.getLogger("lco_embedding").setLevel(level)
    if not verbose:
        # Per-item skips go to errors.jsonl and the command's own output; library chatter stays out of the way.
        logging.getLogger("lco_embedding.embedder").setLevel(logging.ERROR)
        # transformers sets its own level when first imported, from this variable.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def model_options(function: Any) -> Any:
    """The ``--model``, ``--revision``, ``--device`` and ``--dtype`` options."""
    options = [
        click.option(
            "--model",
            "-m",
            default=DEFAULT_MODEL,
            show_default=True,
            help="Hub id or local folder of an LCO-Embedding (or Qwen2.5-Omni / Qwen2.5-VL) checkpoint.",
        ),
        click.option("--revision", help="Hub branch, tag or commit of the model."),
        click.option("--device", help="cuda, cuda:1, cpu, mps, ... [default: cuda if available, else mps, else cpu]"),
        click.option(
            "--dtype",
            type=click.Choice(["auto", "bfloat16", "float16", "float32"]),
            default="auto",
            show_default=True,
            help="Weight dtype; auto = bfloat16 on CUDA, float32 elsewhere.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def load_embedder(
    model: str, *, revision: str | None = None, device: str | None = None, dtype: str = "auto", **kwargs: Any
) -> Any:
    """Load an :class:`LCOEmbedder`, turning a failure into an error message that says what to do."""
    from lco_embedding.embedder import LCOEmbedder

    try:
        return LCOEmbedder(model, revision=revision, device=device, dtype=None if dtype == "auto" else dtype, **kwargs)
    except (OSError, ValueError) as e:
        raise click.ClickException(
            f"cannot load the model {model!r}: {e}\nGive a local checkpoint folder with --model, check the name and "
            "your network (the Hugging Face hub), or try `lco-embed demo`, which runs offline."
        ) from e


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, keeping its end (the file name of a path): ``…/photos/cat.jpg``."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[str] = (), header: bool = True
) -> str:
    """A plain-text table with aligned columns; the columns named in ``right`` are right-aligned; ``header=False``
    leaves out the header and its rule (the headers still name the columns)."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if h in right else v.ljust(w) for v, w, h in zip(values, widths, headers, strict=True)]
        return "  ".join(parts).rstrip()

    top = [line(headers), line(["-" * w for w in widths])] if header else []
    return "\n".join([*top, *(line(row) for row in cells)])
