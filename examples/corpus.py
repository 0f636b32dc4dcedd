"""A corpus job from Python: embed a folder of media to Parquet shards, search it, read it back.

The same code as `lco-embed encode` / `lco-embed search` (see docs/cli.md): calling encode_corpus again on the same
folder resumes it, or does nothing once it is complete.
"""

import os
import tempfile

from _common import load_model, sample_media

from lco_embedding.corpus import encode_corpus, read_embeddings, search_folder

media = sample_media()
model = load_model()
out = tempfile.mkdtemp(prefix="lco-corpus-")
summary = encode_corpus([os.path.dirname(media["png"])], out, model=model, show_progress_bar=False)
print(f"{summary.embedded} embedded, {summary.failed} failed (see {os.path.join(out, 'errors.jsonl')})")
for hit in search_folder(out, model.encode("a colourful gradient"), k=3)[0]:
    print(f"{hit.rank}. {hit.score:+.3f} {hit.modality:<6} {os.path.basename(hit.source)}")
table = read_embeddings(out)
print(table.num_rows, "rows:", table.column_names)
