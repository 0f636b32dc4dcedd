"""The modality table (lco_embedding.core.modalities): one row per modality, read by inputs, prompts, featurize,
records and the backbone."""

from __future__ import annotations

import inspect

import pytest

from lco_embedding.core.modalities import MEDIA_MODALITIES, MODALITIES, MODALITY_TABLE
from lco_embedding.corpus.records import file_modality
from lco_embedding.inputs.parse import infer_modality
from lco_embedding.inputs.prompts import SUFFIXES
from lco_embedding.pipeline.backbone import FLOAT_INPUTS
from lco_embedding.pipeline.featurize import _loader


def test_one_row_per_modality_in_order():
    assert tuple(MODALITY_TABLE) == MODALITIES
    assert tuple(name for name, spec in MODALITY_TABLE.items() if spec.is_media) == MEDIA_MODALITIES
    assert SUFFIXES == {name: spec.suffix for name, spec in MODALITY_TABLE.items()}


@pytest.mark.parametrize("modality", MEDIA_MODALITIES)
def test_media_rows_name_a_loader_options_and_processor_outputs(modality, tiny_omni, embedder):
    from transformers import AutoProcessor

    from lco_embedding.pipeline.settings import EmbedderSettings

    spec = MODALITY_TABLE[modality]
    loader = _loader(spec.loader)
    assert callable(loader) and len(inspect.signature(loader).parameters) == 2  # (source, options)
    assert isinstance(
        getattr(embedder.pipeline().featurizer, spec.options), type(getattr(EmbedderSettings(), spec.options)())
    )
    processor = AutoProcessor.from_pretrained(tiny_omni)
    assert spec.processor_keyword in inspect.signature(processor.__call__).parameters
    assert set(spec.value_keys) <= set(FLOAT_INPUTS)


@pytest.mark.parametrize("modality", MEDIA_MODALITIES)
def test_every_extension_names_its_modality_for_inputs_and_records(modality, tmp_path):
    for extension in MODALITY_TABLE[modality].extensions:
        path = tmp_path / f"file{extension.upper()}"  # case does not matter
        path.write_bytes(b"")
        assert infer_modality(str(path)) == modality
        assert file_modality(str(path)) == modality
