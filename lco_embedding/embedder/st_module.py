"""sentence-transformers 6: :class:`LCOModule`, an ``InputModule`` running an :class:`~lco_embedding.LCOEmbedder`
through its pipeline (the same featurization, forward and pooling as ``encode``).

``LCOEmbedder.to_sentence_transformer()`` builds ``SentenceTransformer(modules=[LCOModule(embedder), Normalize()])``
sharing the embedder's weights; its ``encode`` (with ``normalize_embeddings=True``) equals ``LCOEmbedder.encode``
for every modality, with the same prompts. ``LCOEmbedder.save_pretrained(path)`` writes the weights, the processor,
the preprocessing settings and the sentence-transformers files into one folder:

* ``LCOEmbedder(path)`` loads it (settings and prompts included);
* ``SentenceTransformer(path, trust_remote_code=True)`` loads it: ``modules.json`` names
  ``lco_embedding.integrations.sentence_transformers.LCOModule``, a class outside sentence-transformers, which it
  only imports with ``trust_remote_code=True`` (the class comes from the installed ``lco-embedding`` package;
  nothing is downloaded or executed from the folder);
* transformers' ``Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(path)`` loads the model.

The class lives here, beside the embedder that builds it, and is published (``__module__``) as
``lco_embedding.integrations.sentence_transformers.LCOModule``: that module imports the embedder and gives the class
the embedder type its ``load`` constructs, so neither module imports the other's importer (no cycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from lco_embedding.core.require import require
from lco_embedding.pipeline.settings import SETTINGS_FILE, EmbedderSettings

_st = require("sentence_transformers", "sentence-transformers")
_modules = require("sentence_transformers.base.modules", "sentence-transformers")
InputModule, Normalize = _modules.InputModule, _modules.Normalize

__all__ = ["LCOModule", "to_sentence_transformer"]


class LCOModule(InputModule):
    """Preprocess any LCO input (text, image, audio, video, mixed) and embed it at the last token.

    Args:
        embedder: The :class:`~lco_embedding.LCOEmbedder` whose model, processor and settings are used (shared, not
            copied).
    """

    config_file_name = SETTINGS_FILE
    config_keys = list(EmbedderSettings.SAVED)  # what get_config_dict returns: the settings that decide embeddings
    save_in_root = True
    embedder_type: ClassVar[type | None] = None
    """The class :meth:`load` constructs (set by ``lco_embedding.integrations.sentence_transformers``)."""

    def __init__(self, embedder: Any) -> None:
        super().__init__()
        self.embedder = embedder
        self.auto_model = embedder.model  # registered as a submodule: .to(), .train(), parameters() reach it
        self.tokenizer = embedder.processor.tokenizer

    @property
    def modalities(self) -> list[str]:
        """The modalities the checkpoint embeds, and ``"message"``: mixed items and conversations (which also lets
        one batch mix modalities, as in ``LCOEmbedder.encode``)."""
        return [*self.embedder.modalities, "message"]

    def get_config_dict(self) -> dict[str, Any]:
        """The embedder's preprocessing settings."""
        return self.embedder.embedder_settings.saved()

    def get_sentence_embedding_dimension(self) -> int:
        """The embedding size (the model's hidden size)."""
        return self.embedder.dimension

    def get_max_seq_length(self) -> int | None:
        """User text is cut to this many tokens (``None``: not cut)."""
        return self.embedder.max_length

    @property
    def max_seq_length(self) -> int | None:
        """The embedder's ``max_length`` (``SentenceTransformer.max_seq_length`` reads and sets it here)."""
        return self.embedder.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self.embedder.max_seq_length = value

    @property
    def processor(self) -> Any:
        """The checkpoint's processor (``SentenceTransformer.processor``)."""
        return self.embedder.processor

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Featurize ``inputs`` as ``LCOEmbedder.encode`` does (its pipeline) and pad them into one batch.

        Raises:
            LCOInputError: A bad item, shown in the message (sentence-transformers reorders items by length, so a
                position would mislead).
            RuntimeError: A fault while preparing an item that raised ``TypeError``, which sentence-transformers
                would take for "no prompt support" and retry without the prompt.
        """
        from lco_embedding.core.errors import LCOInputError
        from lco_embedding.inputs.sniff import describe_item

        pipeline = self.embedder.pipeline(prompt=prompt)
        features = []
        for index, item in enumerate(inputs):
            try:
                features.append(pipeline.featurize(index, item))
            except LCOInputError as e:
                raise LCOInputError(f"input {describe_item(item)}: {e.reason}") from e
            except TypeError as e:  # a fault, not an input error: never let sentence-transformers retry it
                raise RuntimeError(f"preparing {type(item).__name__} input failed ({e})") from e
        return pipeline.collate(features)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Add ``token_embeddings`` (final hidden states, padded after each row's real tokens) and
        ``sentence_embedding`` (the last real token's), both float32, to ``features``: the pipeline's forward."""
        from lco_embedding.pipeline.collate import MODEL_INPUT_KEYS

        inputs = {key: value for key, value in features.items() if key in MODEL_INPUT_KEYS or key == "position_ids"}
        features["token_embeddings"], features["sentence_embedding"] = self.embedder.pipeline().states(inputs)
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the model, the processor and the settings to ``output_path``."""
        self.embedder.model.save_pretrained(output_path, safe_serialization=True)
        self.embedder.processor.save_pretrained(output_path)
        self.save_config(output_path)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs: Any,
    ) -> LCOModule:
        """Load the module from a folder written by ``LCOEmbedder.save_pretrained`` (or any LCO checkpoint)."""
        LCOEmbedder = cls.embedder_type
        if LCOEmbedder is None:  # the class was reached without the module that publishes it
            raise RuntimeError("LCOModule.load needs lco_embedding.integrations.sentence_transformers imported first.")
        model_kwargs = dict(kwargs.get("model_kwargs") or {})
        device = kwargs.get("device")
        dtype = model_kwargs.pop("dtype", None) or model_kwargs.pop("torch_dtype", None)
        embedder = LCOEmbedder(
            model_name_or_path,
            device=device,
            dtype=dtype,
            quantization=model_kwargs.pop("quantization", None),
            token=token,
            cache_folder=cache_folder,
            revision=revision,
            local_files_only=local_files_only,
            model_kwargs=model_kwargs or None,
            prompts={},  # sentence-transformers keeps the prompts itself
        )
        return cls(embedder)


def to_sentence_transformer(embedder: Any) -> Any:
    """``SentenceTransformer(modules=[LCOModule(embedder), Normalize()])`` with the embedder's prompts."""
    model = _st.SentenceTransformer(
        modules=[LCOModule(embedder), Normalize()],
        device=str(embedder.device),
        prompts=dict(embedder.prompts),
        default_prompt_name=embedder.default_prompt_name,
        truncate_dim=embedder.truncate_dim,
    )
    return model


LCOModule.__module__ = "lco_embedding.integrations.sentence_transformers"  # where sentence-transformers finds it
