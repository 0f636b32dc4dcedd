"""The modality table (lco_embedding.core.modalities): one row per modality, read by inputs, prompts, featurize,
records and the backbone."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from lco_embedding.core.modalities import MEDIA_MODALITIES, MODALITIES, MODALITY_TABLE
from lco_embedding.core.modalities import resolve as _loader
from lco_embedding.corpus.input_plan import file_modality
from lco_embedding.inputs.parse import infer_modality
from lco_embedding.inputs.prompts import SUFFIXES
from lco_embedding.pipeline.backbone import FLOAT_INPUTS


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


def test_code_outside_the_table_does_not_compare_modality_names():
    """Modalities are rows of one table: what differs between them is a field of the row the code reads. Outside
    the table and the reference oracle no comparison names a modality (``special_tokens == "text"`` is the
    special-token policy, which shares the word)."""
    import ast
    from pathlib import Path

    names = set(MODALITY_TABLE)
    package = Path(__file__).resolve().parents[2] / "lco_embedding"
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name in ("modalities.py", "reference.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            constants = {
                value.value
                for side in sides
                for value in ([side] if isinstance(side, ast.Constant) else getattr(side, "elts", []))
                if isinstance(value, ast.Constant)
            }
            policy = any(isinstance(side, ast.Attribute) and side.attr == "special_tokens" for side in sides)
            if constants & names and not policy:
                found.append(f"{path.relative_to(package)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "\n".join(found)


def test_one_window_planner_cuts_audio_files_in_memory_audio_and_video_sound_alike(embedder, tmp_path):
    from lco_embedding.inputs.parse import parse_item
    from lco_embedding.preprocessing.stream import audio_windows
    from lco_embedding.preprocessing.windows import WindowPlan
    from lco_embedding.segments.spec import SegmentSpec
    from lco_embedding.segments.split import split_item
    from lco_embedding.testing import write_clip_with_sound, write_wav

    rate = 16000
    samples = 0.2 * np.sin(np.arange(int(7.3 * rate)) / 9.0)
    write_wav(tmp_path / "a.wav", samples, rate)
    plan = WindowPlan(2.0, 1.5)
    streamed = [(w.start, w.end) for w in audio_windows(str(tmp_path / "a.wav"), window=2.0, stride=1.5)]
    assert streamed == plan.spans(len(samples) / rate)
    spec = SegmentSpec(audio=2.0, audio_stride=1.5)
    context = embedder.pipeline().featurizer.cut_context
    in_memory = split_item(0, {"audio": {"array": samples.astype(np.float32), "sampling_rate": rate}}, spec, context)
    assert [(s.start, s.end) for s in in_memory] == streamed
    # A video whose last window would hold one frame: it joins the window before, and so does its sound.
    clip = write_clip_with_sound(tmp_path / "v.mkv", seconds=4.25, fps=4, video_codec="mjpeg")
    item = {"video": str(clip), "use_audio_in_video": True}
    segments = list(split_item(0, item, SegmentSpec(video=2.0), context))
    assert [(s.start, s.end) for s in segments] == [(0.0, 2.0), (2.0, 4.25)]
    for segment in segments:
        sound = parse_item(segment.item).parts[0].value["audio"]
        assert len(sound) == pytest.approx((segment.end - segment.start) * rate, abs=2)


def test_an_items_modality_is_its_one_modality_or_mixed_from_any_iterable():
    from lco_embedding.core.modalities import item_modality

    assert item_modality(m for m in ("video",)) == "video"
    assert item_modality(iter(["text", "image"])) == "mixed"
    assert item_modality({"audio": "a.wav", "fps": 2}) == "audio"  # settings are not modalities
