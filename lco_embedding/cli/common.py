"""What the ``lco-embed`` commands share: logging set-up, the model options, model loading, and output tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import click

from lco_embedding.core.logs import configure_logging
from lco_embedding.corpus.job_options import DEFAULT_MODEL

__all__ = [
    "configure_logging",
    "format_table",
    "is_quiet",
    "load_embedder",
    "loading_errors",
    "model_options",
    "preset_kwargs",
    "segment_spec",
    "shorten",
    "StoreTarget",
    "verbosity_options",
]


class StoreTarget(click.ParamType):
    """A corpus: an existing output folder, or a ``lancedb://`` / ``milvus://`` store."""

    name = "STORE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """The target as given, once it is a store URI or an existing folder."""
        from pathlib import Path

        from lco_embedding.corpus.stores import is_store_uri

        text = str(value)
        if not is_store_uri(text) and not Path(text).is_dir():
            self.fail(
                f"{text!r} is neither an output folder nor a store (lancedb://PATH/TABLE, milvus://FILE.db/"
                "COLLECTION, milvus://HOST:PORT/COLLECTION).",
                param,
                ctx,
            )
        return text


def _verbosity(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    meta = ctx.find_root().meta
    if param.name == "verbose":
        meta["lco.verbose"] = meta.get("lco.verbose", 0) + value
    else:
        meta["lco.quiet"] = meta.get("lco.quiet", False) or value
    configure_logging(meta.get("lco.verbose", 0), meta.get("lco.quiet", False))
    return value


def verbosity_options(function: Any) -> Any:
    """The ``-v/--verbose`` and ``-q/--quiet`` options, accepted before and after the subcommand alike."""
    function = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_verbosity,
        help="No progress bars (ours, nor transformers' and the hub's).",
    )(function)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_verbosity,
        help="More log output (-v: INFO, -vv: DEBUG, with transformers' and the hub's).",
    )(function)


def is_quiet() -> bool:
    """True when ``-q`` was given, before or after the subcommand."""
    context = click.get_current_context(silent=True)
    return bool(context and context.find_root().meta.get("lco.quiet", False))


def rerank_options(what: str, k_means: str) -> Any:
    """The ``--rerank MODEL`` and ``--rerank-k N`` options of a command that ranks (``what`` the reranker does there,
    ``k_means`` what ``--rerank-k`` counts)."""

    def decorate(function: Any) -> Any:
        function = click.option(
            "--rerank-k", type=click.IntRange(min=1), default=50, show_default=True, help=f"With --rerank: {k_means}."
        )(function)
        return click.option(
            "--rerank",
            "rerank_model",
            metavar="MODEL",
            help=f"{what} with this model: a generative reranker (a Qwen2.5-Omni or Qwen2.5-VL checkpoint, any "
            "modality) or a sentence-transformers CrossEncoder (docs/rerank.md).",
        )(function)

    return decorate


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
            help="Weight dtype; auto = bfloat16 on CUDA, and on CPUs with native bfloat16 for bfloat16 checkpoints; "
            "float32 elsewhere (the mteb preset: bfloat16).",
        ),
        click.option(
            "--preset",
            type=click.Choice(["default", "mteb", "card"]),
            expose_value=False,
            callback=_remember_preset,
            help="Settings as mteb's LCO-Embedding wrapper evaluates (mteb), as the model card's loop (card), or this "
            "package's (default); `lco-embed info --preset X` lists them.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def quantization_option(function: Any) -> Any:
    """The ``--quantization`` option (int8 / int8-dynamic on CPU and CUDA, int4 / nf4 on CUDA)."""
    return click.option(
        "--quantization",
        type=click.Choice(["int8", "int8-dynamic", "int4", "nf4"]),
        help="Quantize the language model's linear layers while loading (int8, int8-dynamic: CPU and CUDA; int4, "
        "nf4: CUDA). Needs pip install 'lco-embedding[quantization]' ([nf4] for nf4).",
    )(function)


def audio_in_video_option(function: Any) -> Any:
    """The ``--use-audio-in-video[=auto]`` option: embed videos with their sound tracks."""
    return click.option(
        "--use-audio-in-video",
        "use_audio_in_video",
        type=click.Choice(["true", "false", "auto"]),
        is_flag=False,
        flag_value="true",
        default="false",
        show_default=True,
        help="Embed videos with their sound tracks (a silent video is then a failed item); "
        "--use-audio-in-video=auto uses the sound where a video has one. Put it after the inputs, or write =VALUE.",
    )(function)


def audio_in_video(value: str) -> bool | str:
    """The ``use_audio_in_video`` setting an ``--use-audio-in-video`` value stands for."""
    return {"true": True, "false": False}.get(value, value)


def _remember_preset(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.find_root().meta["lco.preset"] = value


def preset_kwargs() -> dict[str, Any]:
    """``{"preset": name}`` when ``--preset`` was given, else nothing (the model's own settings apply)."""
    context = click.get_current_context(silent=True)
    preset = context.find_root().meta.get("lco.preset") if context else None
    return {"preset": preset} if preset else {}


def segment_spec(text: str | None) -> Any:
    """``--segment``'s value as a :class:`~lco_embedding.segments.SegmentSpec` (None when not given); a malformed one
    is a usage error."""
    if text is None:
        return None
    from lco_embedding.segments import SegmentSpec

    try:
        return SegmentSpec.parse(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--segment") from e


def load_embedder(
    model: str,
    *,
    revision: str | None = None,
    device: str | None = None,
    dtype: str = "auto",
    quantization: str | None = None,
    **kwargs: Any,
) -> Any:
    """Load an :class:`LCOEmbedder`, turning a failure into an error message that says what to do."""
    from lco_embedding.embedder import LCOEmbedder

    with loading_errors(model):
        return LCOEmbedder(
            model,
            revision=revision,
            device=device,
            dtype=None if dtype == "auto" else dtype,
            quantization=quantization,
            **{**preset_kwargs(), **kwargs},
        )


def load_reranker(name: str, *, device: str | None = None, dtype: str = "auto", shared: Any = None) -> Any:
    """Load an :class:`~lco_embedding.LCOReranker` (``--rerank MODEL``): ``shared``, an embedder already loaded from
    ``name``, lends its weights; a failure becomes an error message that says what to do."""
    from lco_embedding.rerank import LCOReranker

    with loading_errors(name):
        if shared is not None:
            return LCOReranker(shared)
        kwargs = {"device": device} if device is not None else {}
        if dtype != "auto":
            kwargs["dtype"] = dtype
        return LCOReranker(name, **kwargs)


@contextlib.contextmanager
def loading_errors(model: str) -> Iterator[None]:
    """A model that cannot be loaded as an error message that says what to do."""
    from lco_embedding.core.errors import CheckpointNotFoundError

    try:
        yield
    except CheckpointNotFoundError as e:
        raise click.ClickException(f"{e}\n(`lco-embed demo` runs offline on a tiny checkpoint.)") from e
    except (OSError, ValueError, ImportError) as e:
        raise click.ClickException(f"cannot load the model {model!r}: {e}") from e


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
