"""Media preprocessors: load raw media from any accepted source and normalise it for the processor.

One module per modality (:mod:`.image`, :mod:`.audio`, :mod:`.video`) plus :mod:`.sources` for reading
bytes from paths, URLs and data URIs. Nothing here touches the model, so preprocessing can run anywhere
(threads, processes, another machine). Every failure raises :class:`lco_embedding.LCOInputError`.
"""

from lco_embedding.preprocessing.audio import AudioOptions, preprocess_audio
from lco_embedding.preprocessing.image import ImageOptions, preprocess_image
from lco_embedding.preprocessing.video import VideoOptions, preprocess_video

__all__ = [
    "AudioOptions",
    "ImageOptions",
    "VideoOptions",
    "preprocess_audio",
    "preprocess_image",
    "preprocess_video",
]
