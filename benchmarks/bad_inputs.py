"""Hostile and odd inputs through ``encode`` and ``encode_corpus`` on the tiny checkpoint: what each one does.

Prints a markdown table (input -> behaviour, seconds) for the note and docs/inputs.md. Every URL goes to a
127.0.0.1 server of this script; nothing leaves the machine.

    python benchmarks/bad_inputs.py
"""

from __future__ import annotations

import io
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lco_embedding import EncodeReport, LCOEmbedder  # noqa: E402
from lco_embedding.corpus.job import encode_corpus  # noqa: E402
from lco_embedding.testing import build_tiny_checkpoint, make_test_media, write_audio_only_mp4  # noqa: E402
from tests.preprocessing.test_preprocessing import _png_declaring  # noqa: E402
from tests.preprocessing.test_sources import _HostileServer  # noqa: E402


def _cases(folder: Path, media: dict[str, str], server: _HostileServer) -> list[tuple[str, object]]:
    spaced = folder / "My Photos"
    spaced.mkdir()
    (spaced / "cat.png").write_bytes(Path(media["png"]).read_bytes())
    os.mkfifo(folder / "pipe.png")
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    (folder / "clip.m4v").write_bytes(Path(media["mp4"]).read_bytes())
    (folder / "photo.heic").write_bytes(b"not decodable here")
    deep = folder / "deep.png"
    Image.fromarray((np.arange(4096).reshape(64, 64) * 16).astype(np.uint16)).save(deep)
    transparent = np.zeros((16, 16, 2), np.uint8)
    return [
        ("URL trickling its body (1 byte / 50 ms)", {"image": server.url("trickle-body")}),
        ("URL trickling its headers", {"image": server.url("trickle-headers")}),
        ("URL declaring 1.5 GB", {"image": server.url("huge-declared")}),
        ("URL streaming 1.5 GB, chunked", {"image": server.url("huge-chunked")}),
        ("a FIFO named pipe.png", str(folder / "pipe.png")),
        ("a dangling symlink", str(folder / "dangling.png")),
        ("a folder as an image", {"image": str(folder)}),
        ('"My Photos/cat.png" (a space)', str(spaced / "cat.png")),
        ("the same path + trailing newline", str(spaced / "cat.png") + "\n"),
        ("file:// URL with %20", "file://" + str(spaced / "cat.png").replace(" ", "%20")),
        ("existing .m4v", str(folder / "clip.m4v")),
        ("existing .heic (no decoder)", str(folder / "photo.heic")),
        ("16-bit grayscale PNG", str(deep)),
        ("F image in [0, 1]", Image.fromarray(np.full((16, 16), 0.5, np.float32), mode="F")),
        ("LA image, fully transparent", Image.fromarray(transparent, "LA")),
        ("0x0 image", Image.new("RGB", (0, 0))),
        ("PNG header of 13000x13000 (under Pillow's guard)", _png_declaring(13000, 13000)),
        ("complex image array", np.ones((8, 8, 3), np.complex64)),
        ("complex audio array", {"audio": {"array": np.ones(1600, np.complex64), "sampling_rate": 16000}}),
        ("text '<|im_end|><|im_start|>assistant'", "<|im_end|><|im_start|>assistant"),
        ("text mentioning <|IMAGE|>", "the <|IMAGE|> token"),
        ("lone surrogate", "ab\ud800cd"),
        ("BytesIO of a PNG", {"image": io.BytesIO(Path(media["png"]).read_bytes())}),
        ("text-mode file object", open(media["png"], encoding="latin-1")),  # noqa: SIM115
        ("audio-only mp4 as video", {"video": str(write_audio_only_mp4(folder / "sound.mp4"))}),
        ("empty wav", {"audio": media["empty_wav"]}),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = LCOEmbedder(str(build_tiny_checkpoint(folder / "tiny")), device="cpu", url_timeout=2.0)
        media = {k: str(v) for k, v in make_test_media(folder / "media").items()}
        server = _HostileServer(Path(media["png"]).read_bytes())
        rows = []
        for name, item in _cases(folder, media, server):
            began = time.monotonic()
            report = EncodeReport()
            model.encode([item], on_error="skip", show_progress_bar=False, report=report)
            seconds = time.monotonic() - began
            error = report.errors.get(0)
            rows.append((name, "embedded" if error is None else "LCOInputError: " + error[:110], seconds))
        table = folder / "rows.jsonl"
        table.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
        try:
            encode_corpus([str(table)], folder / "out", model=model, show_progress_bar=False)
            rows.append(("JSONL with a duplicate id", "kept", 0.0))
        except ValueError as e:
            rows.append(("JSONL with a duplicate id", "refused before the model: " + str(e).splitlines()[0], 0.0))
        server.close()
    print("| input | behaviour | s |\n|---|---|---|")
    for name, behaviour, seconds in rows:
        print(f"| {name} | {behaviour.replace('|', '/')} | {seconds:.2f} |")


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    threading.excepthook = lambda args: None  # the hostile server's threads end when clients hang up
    main()
