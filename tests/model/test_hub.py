"""Finding a checkpoint: local folders, the hub cache, an unreachable or turned-off hub; each failure one error."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from lco_embedding import CheckpointNotFoundError, LCOEmbedder
from lco_embedding.model.hub import locate_checkpoint, looks_like_path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _cache_with(checkpoint: str, cache: Path, repo_id: str) -> Path:
    """A hub cache holding ``checkpoint``'s files as ``repo_id`` at main (the layout huggingface_hub writes)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(checkpoint, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


class _RefusingHub:
    """A TCP server on 127.0.0.1 that reads each request line and closes the connection without an answer: a hub
    that cannot be reached. ``requests`` lists the request lines."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            with connection:
                line = connection.makefile("rb").readline().decode("latin-1").strip()
                self.requests.append(line)

    def close(self) -> None:
        self.sock.close()


def test_paths_and_hub_ids_are_told_apart():
    for path in ("./tiny", "../models/x", "/data/x", "~/x", "data/models/x", "C:\\models\\x"):
        assert looks_like_path(path), path
    for hub_id in ("LCO-Embedding/LCO-Embedding-Omni-3B", "gpt2", "org/name.v2"):
        assert not looks_like_path(hub_id), hub_id


def test_a_mistyped_local_path_says_no_such_folder_and_suggests_the_near_one(tmp_path, tiny_omni, monkeypatch):
    shutil.copytree(tiny_omni, tmp_path / "tiny-model")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointNotFoundError, match=r"no such local folder: '.*tiny-modle' \(from './tiny-modle'\)"):
        LCOEmbedder("./tiny-modle")
    with pytest.raises(FileNotFoundError, match=r"did you mean '.*tiny-model'\?"):
        LCOEmbedder("./tiny-modle")
    with pytest.raises(CheckpointNotFoundError, match=r"no such local folder: '/data/no-such-folder'; '/' is the"):
        LCOEmbedder("/data/no-such-folder")
    with pytest.raises(CheckpointNotFoundError, match="neither an existing local folder nor a hub model id"):
        LCOEmbedder("not a name!")


def test_a_folder_that_is_not_a_checkpoint_says_what_it_holds(tmp_path, tiny_omni):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointNotFoundError, match="'.*empty' is a folder but not a checkpoint: it has no "
                       "config.json. It holds nothing: it is empty"):  # fmt: skip
        LCOEmbedder(str(empty))
    parent = tmp_path / "parent"
    shutil.copytree(tiny_omni, parent / "inner")
    (parent / "notes.txt").write_text("x")
    with pytest.raises(CheckpointNotFoundError, match=r"It holds inner/, notes.txt\. Did you mean '.*inner'"):
        LCOEmbedder(str(parent))
    weightless = tmp_path / "weightless"
    weightless.mkdir()
    shutil.copy(Path(tiny_omni) / "config.json", weightless)
    (weightless / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(CheckpointNotFoundError, match="no \\*.safetensors weights. It has pytorch_model.bin"):
        LCOEmbedder(str(weightless))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CheckpointNotFoundError, match="is a file, not a checkpoint folder"):
        LCOEmbedder(str(tmp_path / "file.txt"))
    (weightless / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        LCOEmbedder(str(weightless))


def test_hub_turned_off_and_not_cached_says_how_to_fix_it(tmp_path, monkeypatch):
    with pytest.raises(CheckpointNotFoundError, match="hub access is off \\(local_files_only=True\\).*not in the "
                       "local hub cache.*local checkpoint folder.*HF_HUB_OFFLINE=1"):  # fmt: skip
        LCOEmbedder("LCO-Embedding/LCO-Embedding-Omni-3B", cache_folder=str(tmp_path), local_files_only=True)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointNotFoundError, match=r"hub access is off \(HF_HUB_OFFLINE is set\)"):
        LCOEmbedder("LCO-Embedding/LCO-Embedding-Omni-3B", cache_folder=str(tmp_path))


def test_a_cached_hub_id_loads_from_the_cache_when_the_hub_is_off(tmp_path, tiny_omni, embedder, monkeypatch):
    cache = _cache_with(tiny_omni, tmp_path / "cache", "someone/tiny")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    located = locate_checkpoint("someone/tiny", cache_dir=str(cache))
    assert located.commit == COMMIT and located.hub_kwargs["local_files_only"] and located.folder is None
    model = LCOEmbedder("someone/tiny", cache_folder=str(cache), device="cpu")
    assert model.commit == COMMIT
    np.testing.assert_allclose(model.encode("a cat"), embedder.encode("a cat"), atol=1e-6, rtol=0)


_SCRIPT = """
import json, sys
from lco_embedding import CheckpointNotFoundError, LCOEmbedder
out = {}
try:
    LCOEmbedder("LCO-Embedding/LCO-Embedding-Omni-3B", cache_folder=sys.argv[1])
except CheckpointNotFoundError as e:
    out["error"] = str(e)
model = LCOEmbedder("someone/tiny", cache_folder=sys.argv[1], device="cpu")
out["commit"] = model.commit
out["embedding"] = model.encode("a cat").tolist()
print(json.dumps(out))
"""


def test_an_unreachable_hub_is_tried_once_per_load_then_the_cache_or_one_clear_error(tmp_path, tiny_omni, embedder):
    cache = _cache_with(tiny_omni, tmp_path / "cache", "someone/tiny")
    hub = _RefusingHub()
    environment = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    environment.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "home"))
    try:
        result = subprocess.run(
            [sys.executable, "-c", _SCRIPT, str(cache)], env=environment, capture_output=True, text=True, timeout=300
        )
    finally:
        hub.close()
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.splitlines()[-1])
    # One attempt per load, no retries (huggingface_hub also asks once per process for its agent registry).
    files = [line for line in hub.requests if "/resolve/" in line]
    assert len(files) == 2 and all("/config.json" in line for line in files), hub.requests
    assert "Retrying" not in result.stderr and "Traceback" not in result.stderr
    assert out["error"].startswith("cannot load 'LCO-Embedding/LCO-Embedding-Omni-3B': the Hugging Face hub could not")
    for fix in ("local checkpoint folder", "HF_HUB_OFFLINE=1", "local_files_only=True", "hf download"):
        assert fix in out["error"], fix
    assert "Loading someone/tiny from the local hub cache: the Hugging Face hub could not be reached" in result.stderr
    assert out["commit"] == COMMIT
    np.testing.assert_allclose(out["embedding"], embedder.encode("a cat"), atol=1e-6, rtol=0)
