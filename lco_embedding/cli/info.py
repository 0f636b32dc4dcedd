"""``lco-embed info``: what a checkpoint is and what this machine would run it on, without loading its weights."""

from __future__ import annotations

import json

import click

from lco_embedding.cli.common import format_table, model_options

__all__ = ["info"]


@click.command(short_help="Show a model's type, dimension, modalities, device and versions.")
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info(model: str, revision: str | None, device: str | None, dtype: str, as_json: bool) -> None:
    """Show a model's type, dimension and modalities, the device and dtype it would run with, and versions; with
    --preset, the settings that preset sets.

    Reads the checkpoint's config.json only (no weights are loaded or downloaded).
    """
    from lco_embedding.core.environment import devices, versions
    from lco_embedding.core.errors import CheckpointNotFoundError
    from lco_embedding.model.loading import describe_checkpoint, resolve_device, resolve_dtype
    from lco_embedding.model.quantization import cpu_has_native_bf16
    from lco_embedding.pipeline.settings import PRESET_DTYPES, PRESETS

    preset = click.get_current_context().find_root().meta.get("lco.preset")
    if dtype == "auto" and preset in PRESET_DTYPES:
        dtype = PRESET_DTYPES[preset]
    resolved_device = resolve_device(device)
    report = {
        "model": model,
        "revision": revision,
        "device": str(resolved_device),
        "dtype": str(resolve_dtype(None if dtype == "auto" else dtype, resolved_device)).removeprefix("torch."),
        "cpu bfloat16": "native" if cpu_has_native_bf16() else "emulated",
        "accelerators": devices(),
        "versions": versions(),
    }
    problem = None
    try:
        checkpoint = describe_checkpoint(model, {"revision": revision})
    except CheckpointNotFoundError as e:
        problem = str(e)
    except (OSError, ValueError) as e:
        problem = f"cannot read {model!r}: {e}"
    else:
        report.update(
            model_type=checkpoint.model_type,
            dimension=checkpoint.hidden_size,
            layers=checkpoint.num_layers,
            modalities=list(checkpoint.modalities),
            commit=checkpoint.commit,
            stored_dtype=str(checkpoint.stored_dtype).removeprefix("torch.") if checkpoint.stored_dtype else None,
        )
        chosen = resolve_dtype(None if dtype == "auto" else dtype, resolved_device, checkpoint.stored_dtype)
        report["dtype"] = str(chosen).removeprefix("torch.")
    if preset is not None:
        report["preset"] = preset
        report["preset sets"] = {
            **PRESETS[preset],
            **({"dtype": PRESET_DTYPES[preset]} if preset in PRESET_DTYPES else {}),
        }
    if as_json:
        click.echo(json.dumps({**report, "error": problem}, indent=1))
    else:
        rows = [(key, _text(value)) for key, value in report.items() if key not in ("accelerators", "versions")]
        rows += [("cuda devices", ", ".join(report["accelerators"]["cuda"]) or "none")]
        rows += [(name, version or "not installed") for name, version in report["versions"].items()]
        click.echo(format_table(("key", "value"), rows, header=False))
    if problem:
        raise click.ClickException(problem)


def _text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items()) or "(nothing: this package's defaults)"
    return "-" if value is None else str(value)
