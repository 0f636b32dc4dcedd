"""A corpus run's identity: the manifest a fresh run starts with, and the checks that keep an output to one run —
the same model, settings, options and inputs to resume it; another model or option refused unless ``overwrite``.
"""

from __future__ import annotations

from typing import Any

from lco_embedding.core.errors import LCOError
from lco_embedding.corpus.input_plan import InputSpec, extra_columns, output_name
from lco_embedding.corpus.manifest_folder import FORMAT, FORMAT_VERSION, now
from lco_embedding.corpus.precision import arrow_type
from lco_embedding.corpus.shards import SEGMENT_COLUMNS
from lco_embedding.corpus.store_roles import StoreWriter

__all__ = [
    "RUN_KEY",
    "OutputMismatchError",
    "check_same",
    "duplicates_message",
    "input_key",
    "new_manifest",
    "opened",
]

RUN_KEY = ("model", "dimension", "options", "prompts", "settings", "inputs")
"""Manifest entries that must match for a run to resume in an output."""


class OutputMismatchError(LCOError, ValueError):
    """The output holds a run made with another model, other options or other inputs."""


def input_key(spec: InputSpec) -> dict[str, Any]:
    """An input as the manifest records it (files that are not embedded do not move positions, so they are left
    out)."""
    entry = spec.to_json()
    del entry["ignored"]
    return entry


def duplicates_message(repeats: int, examples: list[tuple[str, list[str]]]) -> str:
    """Refusing records whose ids repeat: how many, where, and how to fix it."""
    listed = "\n  ".join(f"{value!r}: {', '.join(where[:4])}" for value, where in examples)
    return (
        f"{repeats:,} record(s) repeat an id another record already has; ids must be unique:\n  {listed}\n"
        "Fix the ids (or leave the id column empty to use where each record came from), or pass "
        "--allow-duplicate-ids (allow_duplicate_ids=True) to keep them."
    )


def opened(folder: StoreWriter, known: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """Check an existing output folder against what is known before the model loads (or clear it with
    ``overwrite``); its manifest, or None for a new (or cleared) folder.

    Raises:
        OutputMismatchError: The folder holds another run.
        ValueError: The folder holds files but no manifest.
    """
    if folder.exists():
        if overwrite:
            folder.clear()
            return None
        _check_format(folder)
        check_same(folder, known)
        return folder.manifest
    leftovers = folder.leftovers()
    if leftovers and overwrite and folder.capabilities.replaces_foreign_data:  # a table or collection is replaced whole
        folder.clear()
    elif leftovers and not folder.capabilities.replaces_foreign_data:
        raise ValueError(
            f"{folder.location!r} holds files ({', '.join(leftovers[:5])}) but no manifest.json: it is not an "
            "lco-embed output folder. Give an empty or new folder for --out."
        )
    elif leftovers:
        raise ValueError(
            f"{folder.location!r} holds {', '.join(leftovers[:5])} but no manifest: it is not an lco-embed output. "
            "Give another table or collection for --out, or pass --overwrite (overwrite=True) to replace it."
        )
    return None


def _check_format(folder: StoreWriter) -> None:
    """An unfinished run of an earlier format is not resumed: its ids and sources are numbered differently."""
    manifest = folder.manifest
    if manifest.get("format_version") != FORMAT_VERSION and manifest.get("status") != "complete":
        raise OutputMismatchError(
            f"{folder.location!r} holds an unfinished run written by an earlier lco-embedding (output format "
            f"{manifest.get('format_version')}, now {FORMAT_VERSION}: table rows are now named by their line "
            "number); it cannot be resumed. Pass --overwrite (overwrite=True) to start over."
        )


def new_manifest(description: dict[str, Any], specs: list[InputSpec], options: dict[str, Any]) -> dict[str, Any]:
    """The first manifest of a fresh run: what it depends on, its columns, no shards yet."""
    from lco_embedding.core.environment import versions

    total = None if any(spec.items is None for spec in specs) else sum(spec.items or 0 for spec in specs)
    columns = {output_name(name): kind for name, kind in extra_columns(specs).items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "status": "running",
        "created": now(),
        "updated": now(),
        "model": description["model"],
        "dimension": description["dimension"],
        "options": options,
        "prompts": description["prompts"],
        "settings": description["settings"],
        "inputs": [input_key(spec) for spec in specs],
        "ignored_files": {spec.argument: spec.ignored for spec in specs if spec.ignored},
        "columns": {
            "id": "string",
            "source": "string",
            "modality": "string",
            "embedding": str(arrow_type(options["precision"], description["dimension"])),
            **(SEGMENT_COLUMNS if options.get("segment") else {}),
            **columns,
        },
        "int8_ranges": None,
        "counts": {"total": total, "done": 0, "embedded": 0, "failed": 0},
        "shards": [],
        "errors_bytes": 0,
        "seconds": 0.0,
        "versions": versions(),
    }


def _differences(before: Any, now_: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(now_, dict):
        found = []
        for key in sorted(set(before) | set(now_), key=str):
            found += _differences(before.get(key), now_.get(key), f"{path}.{key}" if path else str(key))
        return found
    if isinstance(before, list) and isinstance(now_, list) and len(before) == len(now_):
        pairs = enumerate(zip(before, now_, strict=True))
        return [found for i, (a, b) in pairs for found in _differences(a, b, f"{path}[{i}]")]
    return [] if before == now_ else [f"{path}: {before!r} in the folder, {now_!r} now"]


def check_same(folder: StoreWriter, wanted: dict[str, Any]) -> None:
    """Refuse an output whose manifest differs from ``wanted`` (compared as far as ``wanted`` knows).

    Raises:
        OutputMismatchError: Naming up to ten differences.
    """
    stored = {key: folder.manifest.get(key) for key in wanted}
    for key, value in wanted.items():
        if isinstance(value, dict) and isinstance(stored[key], dict):
            stored[key] = {k: stored[key].get(k) for k in value}  # compare what is known at this stage
    differences = _differences(stored, wanted)
    if differences:
        listed = "\n  ".join(differences[:10])
        raise OutputMismatchError(
            f"{folder.location!r} holds embeddings made with another model, other options or other inputs:\n  "
            f"{listed}\nRe-run with the same model, options and inputs to resume it, choose another output "
            "folder, or pass --overwrite (overwrite=True) to delete it and start over."
        )
