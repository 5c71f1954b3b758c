"""reprolib.io: reading safetensors checkpoints (Checkpoint) — invalid headers and indexes are refused
with a CheckpointError naming the problem."""

from __future__ import annotations

import json
import shutil
import struct

import pytest

from reprolib.errors import CheckpointError
from reprolib.io import Checkpoint


def _raw_file(path, header: dict, data: bytes):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


@pytest.mark.parametrize("header,needle", [
    ({"w": {"dtype": "F32", "shape": [-1, -2], "data_offsets": [0, 8]}}, "negative dimension"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, "not contiguous"),
])
def test_invalid_headers(tmp_path, header, needle):
    _raw_file(tmp_path / "x.safetensors", header, bytes(16))
    with pytest.raises(CheckpointError, match=needle):
        Checkpoint(tmp_path / "x.safetensors")


def test_malformed_index(family, tmp_path):
    bad = tmp_path / "m"
    shutil.copytree(family["math"], bad)
    (bad / "model.safetensors.index.json").write_text(json.dumps({"weight_map": []}))
    with pytest.raises(CheckpointError, match="unreadable safetensors index"):
        Checkpoint(bad)
