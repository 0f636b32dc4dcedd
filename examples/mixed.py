"""Mixed inputs: a caption with its image, ordered content parts, and a whole conversation."""

from _common import load_model, sample_media

media = sample_media()
model = load_model()
emb = model.encode(
    [
        {"text": "a colourful gradient", "image": media["png"]},  # media first, then text, then the suffix
        [{"type": "text", "text": "Caption: "}, {"type": "image", "image": media["png"]}],  # order kept
        [{"role": "user", "content": [{"type": "image", "image": media["png"]}, {"type": "text", "text": "Hi"}]}],
    ]
)
print(emb.shape)
