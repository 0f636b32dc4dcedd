"""Evaluation on your own data: retrieval metrics per query-modality -> corpus-modality pair over a BEIR-layout
dataset of any modality (``lco-embed eval DATA``, :func:`evaluate_retrieval`; ``pip install
'lco-embedding[eval]'``), and mteb tasks through the mteb wrapper (``lco-embed eval --mteb TASK``).

* :mod:`.beir` — the dataset: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``;
* :mod:`.metrics` — nDCG@10, recall@1/10/100, MRR@10, MAP@100 by ``pytrec_eval``;
* :mod:`.retrieval` — the evaluation: corpus embedded by the corpus job, queries with the query prompt, rankings,
  metrics per pair, ``results.json`` / ``results.md`` / ``results.png``;
* :mod:`.mteb_tasks` — installed mteb tasks run through :class:`~lco_embedding.integrations.mteb.LCOMtebEncoder`.
"""

from lco_embedding.evaluation.beir import Dataset, load_dataset
from lco_embedding.evaluation.metrics import METRICS, score_run
from lco_embedding.evaluation.retrieval import EvalResult, evaluate_retrieval

__all__ = ["METRICS", "Dataset", "EvalResult", "evaluate_retrieval", "load_dataset", "score_run"]
