"""Installed mteb tasks run through the mteb wrapper (``lco-embed eval --mteb TASK[,TASK...]``), with their datasets
from the local Hugging Face cache: this package downloads nothing itself, and says which task's data is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lco_embedding.core.require import require

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["run_mteb_tasks"]


def run_mteb_tasks(names: list[str], embedder: LCOEmbedder, out: str | Path, batch_size: int = 32) -> dict[str, float]:
    """Evaluate ``embedder`` on the mteb tasks ``names``; the main score of each, the full results in ``out``
    (mteb's result cache layout).

    Raises:
        ValueError: No task, or a name mteb does not know (naming the closest ones mteb suggests).
        RuntimeError: A task whose data is not in the local cache and cannot be downloaded, or that failed.
    """
    mteb = require("mteb", "mteb")
    from lco_embedding.integrations.mteb import load

    if not names:
        raise ValueError("give at least one mteb task name, e.g. --mteb STS12.")
    try:
        tasks = mteb.get_tasks(tasks=names)
    except KeyError as e:
        raise ValueError(f"mteb has no such task: {e.args[0] if e.args else e}") from None
    encoder = load(embedder)
    scores: dict[str, float] = {}
    for task in tasks:
        try:
            result = mteb.evaluate(
                encoder,
                task,
                cache=mteb.ResultCache(str(out)),
                encode_kwargs={"batch_size": batch_size},
                overwrite_strategy="always",
                show_progress_bar=False,
            )
        except Exception as e:  # mteb raises whatever loading or the model raised; say which task and why
            raise RuntimeError(_explain(task.metadata.name, e)) from e
        for found in result.task_results:
            scores[found.task_name] = float(found.get_score())
    return scores


def _explain(task: str, error: Exception) -> str:
    text = f"{type(error).__name__}: {error}"
    offline = any(word in text for word in ("offline", "LocalEntryNotFound", "Couldn't reach", "ConnectionError",
                                            "HF_HUB_OFFLINE", "not find", "Failed to resolve"))  # fmt: skip
    if offline:
        return (
            f"the data of mteb task {task!r} is not in the local Hugging Face cache and cannot be downloaded "
            f'({text[:300]}). Load it once where the hub is reachable (python -c "import mteb; '
            f"mteb.get_task('{task}').load_data()\") and copy the cache (HF_HOME), then run again."
        )
    return f"mteb task {task!r} failed: {text[:500]}"
