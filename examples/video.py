"""Embed a video file, and the same clip sampled at a different frame rate."""

from _common import load_model, sample_media

from lco_embedding import LCOEmbedder

media = sample_media()
model = load_model()
default = model.encode({"video": media["mp4"]})
dense = LCOEmbedder(model.model_name_or_path, video_fps=4.0).encode({"video": media["mp4"]})
print("2 fps vs 4 fps cosine:", float(default @ dense))
