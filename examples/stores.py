"""A corpus in LanceDB (or Milvus): embed a folder of media into a table, search it with a filter and with
modality-aware ranking, and query it through LanceDB's own embedding function.

The same as `lco-embed encode --out lancedb://...` / `lco-embed search lancedb://...` (docs/stores.md); change the
target to "milvus://corpus.db/corpus" for milvus-lite. Needs `pip install 'lco-embedding[lancedb]'`.
"""

import os
import tempfile

from _common import load_model, sample_media

from lco_embedding.corpus import encode_corpus, search_folder, search_per_modality

media = sample_media()
model = load_model()
folder = tempfile.mkdtemp(prefix="lco-stores-")
target = f"lancedb://{folder}/db/corpus"
encode_corpus([os.path.dirname(media["png"])], target, model=model, show_progress_bar=False)
query = model.encode("a colourful gradient")

print("raw cosine, images and sounds only:")
for hit in search_folder(target, query, k=3, where="modality IN ('image', 'audio')")[0]:
    print(f"  {hit.rank}. {hit.score:+.3f} {hit.modality:<6} {os.path.basename(hit.source)}")
print("calibrated across modalities:")
for hit in search_folder(target, query, k=3, calibrate=True, query_modality="text")[0]:
    print(f"  {hit.rank}. z={hit.score:+.2f} (cos {hit.cosine:+.3f}) {hit.modality:<6} {os.path.basename(hit.source)}")
for modality, hits in search_per_modality(target, query, k=1)[0].items():
    print(f"best {modality}: {os.path.basename(hits[0].source)}")

# LanceDB's own API, with the "lco-embedding" embedding function embedding at ingest and at query time.
import lancedb  # noqa: E402
from lancedb.embeddings import get_registry  # noqa: E402
from lancedb.pydantic import LanceModel, Vector  # noqa: E402

import lco_embedding.integrations.lancedb  # noqa: E402, F401 - registers "lco-embedding"

lco = get_registry().get("lco-embedding").create(name=model.model_name_or_path, device="cpu")


class Item(LanceModel):
    source: str = lco.SourceField()
    vector: Vector(lco.ndims()) = lco.VectorField()


table = lancedb.connect(os.path.join(folder, "db")).create_table("items", schema=Item)
table.add([{"source": media["png"]}, {"source": media["wav"]}, {"source": "a gradient of colours"}])
print("LanceDB's search:", [os.path.basename(r["source"]) for r in table.search("colours").limit(3).to_list()])
