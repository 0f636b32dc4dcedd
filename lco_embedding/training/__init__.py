"""Language-centric contrastive refinement, as in the paper: LoRA on the language model of a multimodal LLM (vision
and audio towers frozen), trained with InfoNCE on mostly text pairs, optionally after a continual generative
pre-training stage; then merged into a full checkpoint that :class:`~lco_embedding.LCOEmbedder` loads.

Needs ``pip install 'lco-embedding[train]'`` (peft). The command line: ``lco-embed train`` and ``lco-embed merge``;
the recipe: ``docs/training.md``.

* :mod:`.data` — JSONL contrastive and generative examples
* :mod:`.lora` — adapters on the language model's linear layers; load, merge
* :mod:`.loss` — InfoNCE with in-batch and hard negatives, gathered across processes
* :mod:`.contrastive` — one contrastive step, with gradient caching
* :mod:`.generative` — next-token loss on captions and documents
* :mod:`.trainer` — the loop: schedule, logging, checkpoints, resume, torchrun
"""

from lco_embedding.training.contrastive import contrastive_backward
from lco_embedding.training.data import (
    ContrastiveExample,
    GenerativeExample,
    read_contrastive_data,
    read_generative_data,
)
from lco_embedding.training.lora import (
    LANGUAGE_MODEL_LINEAR_LAYERS,
    LoraSettings,
    add_lora,
    attach_adapter,
    load_adapter,
    merge_adapter,
    save_adapter,
)
from lco_embedding.training.loss import info_nce_loss
from lco_embedding.training.trainer import TrainingConfig, TrainResult, batch_order, train

__all__ = [
    "LANGUAGE_MODEL_LINEAR_LAYERS",
    "ContrastiveExample",
    "GenerativeExample",
    "LoraSettings",
    "TrainResult",
    "TrainingConfig",
    "add_lora",
    "attach_adapter",
    "batch_order",
    "contrastive_backward",
    "info_nce_loss",
    "load_adapter",
    "merge_adapter",
    "read_contrastive_data",
    "read_generative_data",
    "save_adapter",
    "train",
]
