"""The pipeline every caller shares: settings -> featurize -> plan -> forward -> post-process.

:mod:`.settings` (what decides an embedding), :mod:`.featurize` / :mod:`.text_batch` / :mod:`.workers` (items to
model-ready tensors), :mod:`.batching` / :mod:`.engine` (windows, batch plans, out-of-memory splits),
:mod:`.backbone` / :mod:`.collate` / :mod:`.pooling` (the forward pass), :mod:`.postprocess` (what callers get).
"""
