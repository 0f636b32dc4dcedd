"""``lco-embed train`` and ``lco-embed merge``: LoRA refinement of a checkpoint, and merging the adapter into it."""

from __future__ import annotations

import os

import click

from lco_embedding.cli.common import model_options, preset_kwargs

__all__ = ["merge", "train"]


@click.command(short_help="LoRA-train a checkpoint on contrastive pairs (or captions/documents, --stage generative).")
@click.argument("data", metavar="DATA.jsonl", type=click.Path(exists=True, dir_okay=False))
@model_options
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--stage",
    type=click.Choice(["contrastive", "generative"]),
    default="contrastive",
    show_default=True,
    help="InfoNCE on anchor/positive/negative lines, or next-token loss on captions and documents.",
)
@click.option(
    "--epochs",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="Passes over DATA (fractions allowed).",
)
@click.option("--max-steps", type=click.IntRange(min=1), help="Optimizer steps (overrides --epochs).")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Global batch (all processes)."
)
@click.option(
    "--mini-batch-size",
    type=click.IntRange(min=1),
    help="Items per forward pass (gradient caching), so large batches fit in memory [default: the whole batch].",
)
@click.option("--lr", "learning_rate", type=float, default=4e-4, show_default=True, help="Peak learning rate.")
@click.option(
    "--warmup-ratio",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.05,
    show_default=True,
    help="Share of the steps over which the learning rate rises linearly to --lr.",
)
@click.option("--weight-decay", type=float, default=0.0, show_default=True, help="AdamW weight decay.")
@click.option("--temperature", type=float, default=0.03, show_default=True, help="InfoNCE temperature.")
@click.option("--lora-rank", type=click.IntRange(min=1), default=64, show_default=True, help="Rank of the adapters.")
@click.option(
    "--lora-alpha", type=float, default=128, show_default=True, help="Adapter scale (alpha / rank multiplies them)."
)
@click.option(
    "--lora-dropout",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.05,
    show_default=True,
    help="Dropout on the adapters' input.",
)
@click.option("--max-length", type=click.IntRange(min=1), default=650, show_default=True, help="Text cut (tokens).")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the adapters' init and the data order.")
@click.option("--save-steps", type=click.IntRange(min=1), default=500, show_default=True, help="Checkpoint interval.")
@click.option("--log-steps", type=click.IntRange(min=1), default=10, show_default=True, help="Progress interval.")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False), help="Continue training this adapter.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run's log and checkpoints in --out.")
@click.option(
    "--gradient-checkpointing/--no-gradient-checkpointing",
    default=None,
    help="Recompute activations in the backward pass [default: on with CUDA].",
)
def train(data: str, model: str, revision: str | None, device: str | None, dtype: str, out: str, **options) -> None:
    """Train a LoRA adapter on --model's language model (vision and audio towers frozen) and write it to
    --out/adapter, with checkpoints, train_log.jsonl and config.json beside it. Merge it with `lco-embed merge`.

    \b
    Contrastive lines:  {"anchor": {"text": "..."}, "positive": {"image": "img/1.jpg"}, "negative": {...}}
                        (also "image_path" keys, lists of negatives, or ["anchor", "positive", "negative"])
    Generative lines:   {"text": "a caption or document", "image": "img/1.jpg"}   (media optional)

    Runs on several GPUs with torchrun: torchrun --nproc-per-node 8 -m lco_embedding.cli train ...
    See docs/training.md for the authors' recipe.
    """
    from lco_embedding.core.require import require

    require("peft", "train")
    from lco_embedding.training import LoraSettings, TrainingConfig
    from lco_embedding.training import train as run_training

    lora = LoraSettings(options.pop("lora_rank"), options.pop("lora_alpha"), options.pop("lora_dropout"))
    adapter, resume, overwrite = options.pop("adapter"), options.pop("resume"), options.pop("overwrite")
    try:
        config = TrainingConfig(lora=lora, **options)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    first = int(os.environ.get("RANK", "0")) == 0

    def progress(record: dict) -> None:
        if first and (record["step"] % config.log_steps == 0 or record["step"] == record["total_steps"]):
            click.echo(
                f"step {record['step']}/{record['total_steps']}  epoch {record['epoch']:.2f}  loss {record['loss']:.4f}"
                f"  lr {record['learning_rate']:.3g}  {record['seconds']:.2f}s",
                err=True,
            )

    try:
        result = run_training(
            model,
            data,
            out,
            config,
            adapter=adapter,
            resume=resume,
            overwrite=overwrite,
            device=device,
            dtype=None if dtype == "auto" else dtype,
            embedder_kwargs={"revision": revision, **preset_kwargs()},
            on_step=progress,
        )
    except (ValueError, FileExistsError, TypeError) as e:
        raise click.ClickException(str(e)) from e
    if first:
        click.echo(f"Wrote the adapter to {result.adapter} ({result.steps} steps, last loss {result.loss:.4f}).")
        click.echo(f"Merge it: lco-embed merge {result.adapter} --out MERGED")


@click.command(short_help="Merge a LoRA adapter into its base: a full checkpoint LCOEmbedder loads.")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder of the merged checkpoint.")
@click.option("--base", help="Base checkpoint [default: the one the adapter names].")
@click.option("--device", help="Where to merge [default: cuda if available, else cpu].")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "bfloat16", "float16", "float32"]),
    default="auto",
    show_default=True,
    help="dtype of the saved weights; auto = the base checkpoint's.",
)
def merge(adapter: str, out: str, base: str | None, device: str | None, dtype: str) -> None:
    """Merge ADAPTER (from `lco-embed train`) into its base checkpoint and write a full checkpoint to --out, with
    the processor, tokenizer, chat template, settings and sentence-transformers files: LCOEmbedder(OUT),
    `lco-embed encode --model OUT` and SentenceTransformer(OUT, trust_remote_code=True) load it."""
    from lco_embedding.core.require import require

    require("peft", "train")
    from lco_embedding.training import merge_adapter

    try:
        path = merge_adapter(adapter, out, base=base, device=device, dtype=None if dtype == "auto" else dtype)
    except (OSError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"Wrote the merged checkpoint to {path}.")
