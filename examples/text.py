"""Embed text, with and without a task instruction, and compare."""

from _common import load_model

model = load_model()
docs = ["A cat sleeps on a warm mat.", "Stock markets fell sharply on Monday.", "The kitten naps in the sun."]
doc_emb = model.encode(docs)
query_emb = model.encode("Where is the cat sleeping?", prompt="Find the passage that answers the question: ")
print("embedding size:", model.get_embedding_dimension())
for doc, score in zip(docs, model.similarity(query_emb, doc_emb)[0].tolist(), strict=True):
    print(f"{score:+.3f}  {doc}")
