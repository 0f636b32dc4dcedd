"""LangChain, LlamaIndex and Haystack integrations, end to end with the real packages, offline.

Each framework indexes five documents in its own in-memory vector store and answers a query; the retrieved list
must be exactly what our own ``similarity`` ranks first.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import subprocess
import sys

import numpy as np
import pytest

from lco_embedding import LCOEmbedder

DOCS = [
    "the cat sleeps on the warm mat",
    "stock markets fell sharply on monday",
    "a recipe for bread with flour and water",
    "kittens play with a ball of yarn",
    "the train to the city leaves at noon",
]
QUERY = "where is the cat"
TOP_K = 3


@pytest.fixture(scope="module")
def model(tiny_omni) -> LCOEmbedder:
    return LCOEmbedder(tiny_omni, device="cpu", prompts={"query": "Find the passage: ", "document": ""})


@pytest.fixture(scope="module")
def images(media) -> list[str]:
    return [media["png"], media["jpg"], media["gray_png"], media["png_rgba"]]


def _our_ranking(model: LCOEmbedder, query: str, documents: list, k: int = TOP_K) -> list[int]:
    scores = model.similarity(model.encode_query(query, modality="text"), model.encode_document(documents))[0]
    order = np.argsort(-scores.numpy(), kind="stable")
    return [int(i) for i in order[:k]]


def test_import_lco_embedding_imports_no_framework():
    frameworks = ["sentence_transformers", "mteb", "langchain_core", "llama_index", "haystack"]
    code = (
        f"import sys, lco_embedding, lco_embedding.integrations; print([m for m in {frameworks} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("lco_embedding.integrations.langchain", "langchain_core", "langchain"),
        ("lco_embedding.integrations.llama_index", "llama_index", "llama-index"),
        ("lco_embedding.integrations.haystack", "haystack", "haystack"),
        ("lco_embedding.integrations.mteb", "mteb", "mteb"),
    ],
)
def test_a_missing_framework_names_the_extra(monkeypatch, module, framework, extra):
    for name in [m for m in sys.modules if m == framework or m.startswith(framework + ".") or m == module]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, framework, None)  # makes "import framework" fail
    with pytest.raises(ImportError, match=rf"pip install 'lco-embedding\[{extra}\]'"):
        importlib.import_module(module)


# --------------------------------------------------------------------------------------------------- LangChain
def test_langchain_retrieval_matches_our_ranking(model, images):
    from langchain_core.vectorstores import InMemoryVectorStore

    from lco_embedding.integrations.langchain import LCOEmbeddings

    embeddings = LCOEmbeddings(model)
    store = InMemoryVectorStore(embedding=embeddings)
    store.add_texts(DOCS)
    found = [doc.page_content for doc in store.similarity_search(QUERY, k=TOP_K)]
    assert found == [DOCS[i] for i in _our_ranking(model, QUERY, DOCS)]
    found_async = asyncio.run(store.asimilarity_search(QUERY, k=TOP_K))
    assert [doc.page_content for doc in found_async] == found
    np.testing.assert_allclose(embeddings.embed_query(QUERY), model.encode_query(QUERY, modality="text"), atol=1e-6)
    np.testing.assert_allclose(
        embeddings.embed_images(images), model.encode_document([{"image": p} for p in images]), atol=1e-6
    )
    np.testing.assert_allclose(asyncio.run(embeddings.aembed_documents(DOCS)), embeddings.embed_documents(DOCS))


def test_langchain_embeddings_load_by_path(tiny_omni):
    from lco_embedding.integrations.langchain import LCOEmbeddings

    embeddings = LCOEmbeddings(tiny_omni, device="cpu")
    assert len(embeddings.embed_query("hello")) == 64


# -------------------------------------------------------------------------------------------------- LlamaIndex
def test_llama_index_text_retrieval_matches_our_ranking(model):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    from lco_embedding.integrations.llama_index import LCOEmbedding

    embed = LCOEmbedding(model)
    index = VectorStoreIndex([TextNode(text=d, id_=str(i)) for i, d in enumerate(DOCS)], embed_model=embed)
    found = [int(n.node.node_id) for n in index.as_retriever(similarity_top_k=TOP_K).retrieve(QUERY)]
    assert found == _our_ranking(model, QUERY, DOCS)
    assert asyncio.run(embed.aget_query_embedding(QUERY)) == embed.get_query_embedding(QUERY)


def test_llama_index_image_retrieval_matches_our_ranking(model, images):
    from llama_index.core.indices import MultiModalVectorStoreIndex
    from llama_index.core.schema import ImageNode

    from lco_embedding.integrations.llama_index import LCOEmbedding

    embed = LCOEmbedding(model)
    nodes = [ImageNode(image_path=p, text=f"picture {i}", id_=str(i)) for i, p in enumerate(images)]
    index = MultiModalVectorStoreIndex(nodes, embed_model=embed, image_embed_model=embed)
    retriever = index.as_retriever(image_similarity_top_k=TOP_K)
    found = [int(n.node.node_id) for n in retriever.text_to_image_retrieve(QUERY)]
    assert found == _our_ranking(model, QUERY, [{"image": p} for p in images])
    with open(images[1], "rb") as f:
        from_bytes = embed.get_image_embedding(io.BytesIO(f.read()))
    np.testing.assert_allclose(from_bytes, embed.get_image_embedding(images[1]), atol=1e-6)
    assert asyncio.run(embed.aget_image_embedding(images[1])) == embed.get_image_embedding(images[1])


# ---------------------------------------------------------------------------------------------------- Haystack
def test_haystack_text_and_image_retrieval_matches_our_ranking(tiny_omni, model, images):
    from haystack import Document, Pipeline
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.components.writers import DocumentWriter
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from lco_embedding.integrations.haystack import LCODocumentEmbedder, LCODocumentImageEmbedder, LCOTextEmbedder

    settings = {"prompts": model.prompts, "embedder_kwargs": {"device": "cpu"}}
    texts, pictures = InMemoryDocumentStore(), InMemoryDocumentStore()
    for store, embedder, documents in (
        (
            texts,
            LCODocumentEmbedder(tiny_omni, **settings),
            [Document(content=d, id=str(i)) for i, d in enumerate(DOCS)],
        ),
        (
            pictures,
            LCODocumentImageEmbedder(tiny_omni, **settings),
            [Document(content="", id=str(i), meta={"file_path": p}) for i, p in enumerate(images)],
        ),
    ):
        indexing = Pipeline()
        indexing.add_component("embed", embedder)
        indexing.add_component("write", DocumentWriter(document_store=store))
        indexing.connect("embed.documents", "write.documents")
        indexing.run({"embed": {"documents": documents}})

    for store, expected in (
        (texts, _our_ranking(model, QUERY, DOCS)),
        (pictures, _our_ranking(model, QUERY, [{"image": p} for p in images])),
    ):
        query = Pipeline()
        query.add_component("embed", LCOTextEmbedder(tiny_omni, **settings))
        query.add_component("retrieve", InMemoryEmbeddingRetriever(document_store=store, top_k=TOP_K))
        query.connect("embed.embedding", "retrieve.query_embedding")
        query = Pipeline.loads(query.dumps())  # serialisable, model loaded in warm_up
        found = [int(d.id) for d in query.run({"embed": {"text": QUERY}})["retrieve"]["documents"]]
        assert found == expected


def test_haystack_components_explain_misuse(tiny_omni):
    from haystack import Document

    from lco_embedding.integrations.haystack import LCODocumentImageEmbedder, LCOTextEmbedder

    with pytest.raises(RuntimeError, match="warm_up"):
        LCOTextEmbedder(tiny_omni).run("x")
    images = LCODocumentImageEmbedder(tiny_omni, embedder_kwargs={"device": "cpu"})
    images.warm_up()
    with pytest.raises(ValueError, match="Document 0 .*file_path"):
        images.run([Document(content="no image")])
    restored = LCODocumentImageEmbedder.from_dict(images.to_dict())
    assert restored.file_path_meta_field == "file_path" and restored.model == tiny_omni


def test_rerankers_of_langchain_llama_index_and_haystack_rank_as_lco_reranker(tiny_reranker):
    """The three frameworks' reranker components give LCOReranker's order and relevance on the same texts."""
    from haystack import Document as HaystackDocument
    from haystack import Pipeline
    from langchain_core.documents import Document as LangChainDocument
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from lco_embedding import LCOReranker
    from lco_embedding.integrations.haystack import LCORanker
    from lco_embedding.integrations.langchain import LCORerank as LangChainRerank
    from lco_embedding.integrations.llama_index import LCORerank as LlamaIndexRerank

    reranker = LCOReranker(tiny_reranker, device="cpu")
    texts = ["a dog in the fog", "a cat on a mat", "the quick brown fox", "photo.jpg"]  # a file-like name stays text
    hits = reranker.rank({"text": "a cat"}, [{"text": t} for t in texts], top_k=2)
    want = [(h["corpus_id"], reranker.relevance(h["score"])) for h in hits]

    def same(got: list[tuple[int, float]]) -> bool:
        return [i for i, _ in got] == [i for i, _ in want] and np.allclose([s for _, s in got], [s for _, s in want])

    documents = [LangChainDocument(page_content=t) for t in texts]
    kept = LangChainRerank(reranker, top_n=2).compress_documents(documents, "a cat")
    assert same([(texts.index(d.page_content), d.metadata["relevance_score"]) for d in kept])
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.0) for t in texts]
    ranked = LlamaIndexRerank(reranker, top_n=2).postprocess_nodes(nodes, QueryBundle("a cat"))
    assert same([(texts.index(n.node.get_content()), n.score) for n in ranked])
    pipe = Pipeline()
    pipe.add_component("rank", LCORanker(tiny_reranker, top_k=2, reranker_kwargs={"device": "cpu"}))
    pipe = Pipeline.loads(pipe.dumps())  # serialised and rebuilt, as Haystack deployments do
    found = pipe.run({"rank": {"query": "a cat", "documents": [HaystackDocument(content=t) for t in texts]}})
    assert same([(texts.index(d.content), d.score) for d in found["rank"]["documents"]])
