"""Cross-modal search: one index of images, audio and video, queried with text."""

from _common import load_model, sample_media

media = sample_media()
model = load_model()
corpus = [media["png"], media["jpg"], {"audio": media["wav"]}, {"audio": media["flac"]}, {"video": media["mp4"]}]
names = ["gradient.png", "photo.jpg", "tone.wav", "chirp.flac", "clip.mp4"]
index = model.encode(corpus, show_progress_bar=False)
for query in ["a pure musical tone", "a moving picture", "a photograph"]:
    scores = model.similarity(model.encode(query), index)[0]
    best = scores.argsort(descending=True)[:3].tolist()
    print(f"{query!r}: " + ", ".join(f"{names[i]} ({scores[i]:+.3f})" for i in best))
