"""``lco-embed serve``: the OpenAI-compatible embedding server."""

from __future__ import annotations

from typing import Any

import click

from lco_embedding.cli.common import load_embedder, load_reranker, model_options, quantization_option

__all__ = ["serve"]


@click.command(short_help="Serve an OpenAI-compatible /v1/embeddings endpoint with dynamic batching.")
@model_options
@quantization_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--api-key", envvar="LCO_API_KEY", help="Require 'Authorization: Bearer KEY' (or set LCO_API_KEY).")
@click.option("--served-model-name", help="The name clients pass as `model` [default: the --model value].")
@click.option(
    "--max-wait-ms",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="How long a request waits for others to share its forward pass.",
)
@click.option("--max-tokens", type=click.IntRange(min=1), help="Token budget of one forward pass [default: model's].")
@click.option(
    "--max-batch-items", type=click.IntRange(min=1), default=64, show_default=True, help="Most items in a forward pass."
)
@click.option(
    "--max-queue-items",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Items held at once; beyond it requests get 429 with Retry-After.",
)
@click.option(
    "--max-queue-tokens",
    type=click.IntRange(min=1),
    help="Tokens of featurized items waiting for the model (after items' own media settings); a request that "
    "would pass it while others wait gets 429 [default: 32 forward passes' budget].",
)
@click.option(
    "--max-items-per-request",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Most items in one request, in every shape (input, messages, texts, images, inputs); more get 400.",
)
@click.option(
    "--max-parts-per-request",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Most content parts in one request, all items and messages together, counted before decoding; more get 400.",
)
@click.option(
    "--max-item-tokens",
    type=click.IntRange(min=1),
    default=32_768,
    show_default=True,
    help="Most tokens one item may become, under every preset (a text past it is refused where the preset does not "
    "cut it); more get 400.",
)
@click.option(
    "--max-item-bytes",
    type=click.IntRange(min=1),
    default=20 * 2**20,
    show_default=True,
    help="Largest item (text as UTF-8, a decoded data URI or a downloaded URL), in bytes; larger get 400.",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=64 * 2**20,
    show_default=True,
    help="Largest request body, in bytes; larger get 413.",
)
@click.option(
    "--featurize-workers",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Threads that preprocess items while the model runs.",
)
@click.option(
    "--prompt",
    "prompts",
    multiple=True,
    metavar="NAME=TEXT",
    help='A task instruction clients select with "prompt_name": NAME (repeat; adds to or replaces the model\'s '
    "saved prompts).",
)
@click.option(
    "--default-prompt",
    metavar="NAME",
    help="The prompt used when a request names none [default: the model's saved default, else none].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server processes sharing the port, each with its own copy of the model and cores // N threads (CPU "
    "deployments; on a GPU run one server per GPU).",
)
@click.option(
    "--int8-range",
    type=click.FloatRange(min=0, min_open=True),
    help="The range /v2/embed's int8/uint8 embeddings quantize [default: 4 / sqrt(dimension)].",
)
@click.option(
    "--rerank-model",
    help="Also serve POST /v1/rerank and /v2/rerank with this generative reranker (a checkpoint of the Qwen2.5-Omni "
    "or Qwen2.5-VL architecture; the --model value shares its weights). See docs/rerank.md.",
)
@click.option("--allow-url", is_flag=True, help="Fetch http(s) media URLs (off: data URIs only).")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="With --allow-url: fetch only from these hosts (repeat); needed for internal addresses.",
)
def serve(
    model: str,
    revision: str | None,
    device: str | None,
    dtype: str,
    quantization: str | None,
    host: str,
    port: int,
    api_key: str | None,
    served_model_name: str | None,
    max_wait_ms: float,
    max_tokens: int | None,
    max_batch_items: int,
    max_queue_items: int,
    max_queue_tokens: int | None,
    max_items_per_request: int,
    max_parts_per_request: int,
    max_item_tokens: int,
    max_item_bytes: int,
    max_body_bytes: int,
    featurize_workers: int,
    prompts: tuple[str, ...],
    default_prompt: str | None,
    workers: int,
    int8_range: float | None,
    rerank_model: str | None,
    allow_url: bool,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Serve MODEL over HTTP: POST /v1/embeddings (OpenAI's API, with vLLM's chat-style messages and typed content
    parts), POST /v2/embed (Cohere's), GET /v1/models, /health, /ready and /metrics (Prometheus); with
    --rerank-model, POST /v1/rerank (Jina's and vLLM's shape) and /v2/rerank (Cohere's).

    `input` is a string, a list of strings, or a list of items such as {"text": "...", "image":
    "data:image/png;base64,..."}; add "prompt_name": "query" for one of the model's saved prompts or of those
    given with --prompt. Concurrent requests share forward passes (dynamic batching); when --max-queue-items are
    held, requests get 429 with Retry-After. Media come as data URIs; URLs only with --allow-url, and never to
    internal addresses unless --allowed-host names them.
    """
    from lco_embedding.core.require import require

    require("uvicorn", "server")

    from lco_embedding.serving import ServerSettings, create_app

    try:
        settings = ServerSettings(
            served_model_name=served_model_name or model,
            api_key=api_key,
            max_wait_ms=max_wait_ms,
            max_tokens_per_batch=max_tokens,
            max_batch_items=max_batch_items,
            max_queue_items=max_queue_items,
            max_queue_tokens=max_queue_tokens,
            featurize_workers=featurize_workers,
            max_items_per_request=max_items_per_request,
            max_parts_per_request=max_parts_per_request,
            max_item_tokens=max_item_tokens,
            max_item_bytes=max_item_bytes,
            max_body_bytes=max_body_bytes,
            allow_url=allow_url,
            allowed_hosts=list(allowed_hosts),
            int8_range=int8_range,
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if allowed_hosts and not allow_url:
        raise click.UsageError("--allowed-host goes with --allow-url.")
    named = _parse_prompts(prompts)
    if rerank_model is not None and workers > 1:
        raise click.UsageError("--rerank-model runs in one server process: leave out --workers (or use 1).")
    if workers > 1:
        spec = _worker_spec(model, revision, device, dtype, quantization, settings, named, default_prompt)
        click.echo(f"Serving {settings.served_model_name} with {workers} workers on http://{host}:{port}/v1", err=True)
        from lco_embedding.serving.processes import run_workers

        run_workers(spec, host=host, port=port, workers=workers)
        return
    embedder = load_embedder(model, revision=revision, device=device, dtype=dtype, quantization=quantization)
    embedder.prompts.update(named)
    if default_prompt is not None:
        if default_prompt not in embedder.prompts:
            raise click.UsageError(
                f"--default-prompt {default_prompt!r} is not a prompt of this server: give it with --prompt "
                f"{default_prompt}=TEXT (prompts now: {', '.join(sorted(embedder.prompts)) or 'none'})."
            )
        embedder.default_prompt_name = default_prompt
    click.echo(
        f"Serving {settings.served_model_name} ({embedder.get_embedding_dimension()}-d, {embedder.device}) "
        f"on http://{host}:{port}/v1",
        err=True,
    )
    from lco_embedding.serving import MainThreadRunner

    reranker = None
    if rerank_model is not None:
        shared = embedder if rerank_model == model else None
        reranker = load_reranker(rerank_model, device=device, dtype=dtype, shared=shared)
        if reranker.backend != "generative":
            raise click.UsageError(
                f"--rerank-model {rerank_model!r} is a CrossEncoder; the server serves generative rerankers "
                "(checkpoints of the Qwen2.5-Omni or Qwen2.5-VL architecture). Use it with `lco-embed search/eval "
                "--rerank`."
            )
        click.echo(f"Reranking with {rerank_model} on http://{host}:{port}/v1/rerank and /v2/rerank", err=True)
    runner = MainThreadRunner()  # the model on this (main) thread, HTTP in a thread of its own
    runner.serve(create_app(embedder, settings, model_loop=runner, reranker=reranker), host=host, port=port)


def _worker_spec(
    model: str,
    revision: str | None,
    device: str | None,
    dtype: str,
    quantization: str | None,
    settings: Any,
    prompts: dict[str, str],
    default_prompt: str | None,
) -> Any:
    """What each ``--workers N`` process loads; the checkpoint is found here first (its errors are one line, as
    for one process)."""
    from dataclasses import asdict

    from lco_embedding.core.errors import CheckpointNotFoundError
    from lco_embedding.model.hub import locate_checkpoint
    from lco_embedding.model.quantization import check_quantization
    from lco_embedding.serving.processes import WorkerSpec

    meta = click.get_current_context().find_root().meta
    try:
        locate_checkpoint(model, revision=revision)
        check_quantization(quantization)
    except (CheckpointNotFoundError, ImportError) as e:
        raise click.ClickException(str(e)) from e
    return WorkerSpec(
        model=model,
        revision=revision,
        device=device,
        dtype=None if dtype == "auto" else dtype,
        quantization=quantization,
        prompts=prompts,
        default_prompt=default_prompt,
        settings=asdict(settings),
        verbosity=(meta.get("lco.verbose", 0), meta.get("lco.quiet", False)),
        preset=meta.get("lco.preset"),
    )


def _parse_prompts(values: tuple[str, ...]) -> dict[str, str]:
    """``("query=Find: ", ...)`` -> ``{"query": "Find: "}``; a malformed entry is a usage error."""
    prompts: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--prompt takes NAME=TEXT, e.g. --prompt 'query=Find the text: ', got {value!r}.")
        prompts[name.strip()] = text
    return prompts
