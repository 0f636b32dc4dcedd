"""analyze_pairs on the tiny checkpoint, and `lco-embed analyze` as a subprocess writing the table and figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lco_embedding.analysis import DEFAULT_METRICS, analyze_pairs, anisotropy, embed_pairs, read_pairs
from lco_embedding.testing import synthetic_image, write_wav
from tests.cli.conftest import run_cli


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    """Six images and five sounds with captions, as a pairs JSONL (paths relative to it)."""
    folder = tmp_path_factory.mktemp("pairs")
    (folder / "media").mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(6):
        Image.fromarray(synthetic_image(40 + 12 * i, 60 + 8 * i, rng)).save(folder / "media" / f"img{i}.png")
        lines.append({"image": f"media/img{i}.png", "text": f"a picture with {i + 1} colourful stripes"})
    t = np.arange(8000) / 16000
    for i in range(5):
        write_wav(folder / "media" / f"tone{i}.wav", 0.4 * np.sin(2 * np.pi * (220 + 110 * i) * t), 16000)
        lines.append({"audio": f"media/tone{i}.wav", "text": f"a tone of {220 + 110 * i} hertz"})
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_analyze_pairs_gives_a_tidy_table_per_modality_and_layer(pairs_file, embedder):
    pairs = read_pairs(pairs_file)
    first, second = embed_pairs(embedder, pairs)
    assert first.shape == (11, embedder.num_layers + 1, 64) and second.shape == first.shape
    table = analyze_pairs(embedder, pairs, k=3, model_name="tiny", embeddings=(first, second))
    assert list(table.columns) == ["model", "pair", "modality", "layer", "metric", "value", "n", "k"]
    layers = embedder.num_layers + 1
    assert len(table) == 2 * layers * (2 + len(DEFAULT_METRICS))
    assert set(table["pair"]) == {"image-text", "audio-text"} and set(table["layer"]) == set(range(layers))
    assert table.groupby("pair")["n"].first().to_dict() == {"audio-text": 5, "image-text": 6}
    # Layer 0 (the embedding output) holds the same last token for every input: alignment is undefined there.
    undefined = (table["layer"] == 0) & ~table["metric"].isin(["anisotropy", "modality_gap"])
    assert table[undefined]["value"].isna().all() and np.isfinite(table[~undefined]["value"]).all()
    # The last hidden state is the embedding itself: its anisotropy equals that of encode's output.
    images = [p[0] for p in pairs[:6]]
    last = table[(table["metric"] == "anisotropy") & (table["modality"] == "image") & (table["layer"] == layers - 1)]
    assert last["value"].item() == pytest.approx(anisotropy(embedder.encode(images)), abs=1e-5)
    mutual = table[(table["metric"] == "mutual_knn") & (table["layer"] > 0)]["value"]
    assert mutual.between(0, 1).all()


def test_bad_pairs_are_refused(tmp_path, embedder):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "a.png", "audio": "b.wav", "text": "two media"}\n')
    with pytest.raises(ValueError, match="line 1: a pair is one of"):
        read_pairs(bad)
    with pytest.raises(ValueError, match="unknown metrics"):
        analyze_pairs(embedder, [({"text": "a"}, {"text": "b"})] * 4, metrics=["nope"])
    with pytest.raises(ValueError, match="at least 4"):
        analyze_pairs(embedder, [({"text": "a"}, {"text": "b"})] * 3)


def test_lco_embed_analyze_writes_the_table_and_readable_figures(pairs_file, tmp_path, tiny_omni, tiny_omni_full):
    out = tmp_path / "analysis"
    result = run_cli("analyze", pairs_file, "--model", tiny_omni, "--compare", tiny_omni_full, "--out", out, "-k", 3)
    table = pd.read_csv(out / "metrics.csv")
    assert set(table["model"]) == {tiny_omni, tiny_omni_full}
    assert len(table) == 2 * 2 * 3 * (2 + len(DEFAULT_METRICS))
    document = json.loads((out / "metrics.json").read_text())
    assert document["models"] == [tiny_omni, tiny_omni_full] and len(document["rows"]) == len(table)
    for name, least in (("anisotropy.png", (700, 450)), ("alignment.png", (1500, 900)), ("heatmap-0.png", (600, 500)),
                        ("heatmap-1.png", (600, 500))):  # fmt: skip
        with Image.open(out / name) as image:
            image.verify()
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size[0] >= least[0] and image.size[1] >= least[1], (name, image.size)
    assert "Wrote" in result.stdout


def test_lco_embed_analyze_with_the_authors_conventions(pairs_file, tmp_path, embedder, tiny_omni):
    """--conventions authors: the authors' prompts and metric conventions, the same numbers as analyze_pairs."""
    out = tmp_path / "authors"
    run_cli("analyze", pairs_file, "--model", tiny_omni, "--out", out, "-k", 3, "--metrics", "lcs_knn,cka_linear",
            "--conventions", "authors")  # fmt: skip
    document = json.loads((out / "metrics.json").read_text())
    assert document["conventions"] == "authors"
    written = pd.read_csv(out / "metrics.csv")
    pairs = read_pairs(pairs_file)
    want = analyze_pairs(embedder, pairs, metrics=["lcs_knn", "cka_linear"], k=3, conventions="authors")
    paper = analyze_pairs(embedder, pairs, metrics=["lcs_knn", "cka_linear"], k=3)
    key = ["pair", "modality", "layer", "metric"]
    merged = written.merge(want, on=key, suffixes=("", "_want")).merge(paper, on=key, suffixes=("", "_paper"))
    assert len(merged) == len(want) == len(written)
    assert np.allclose(merged["value"], merged["value_want"], atol=1e-5, equal_nan=True)
    # The authors' mean LCS length is k times our fraction wherever the prompts agree; here they do not all agree
    # (images use the mixed suffix), so only a difference somewhere is asserted.
    lcs = merged[(merged["metric"] == "lcs_knn") & (merged["layer"] > 0)]
    assert (lcs["value"] > 1).any() and not np.allclose(lcs["value"], lcs["value_paper"])
