"""What the commands print around their work: help, tables, hints, answers to prompts; and
what they leave behind on the machine. Fast: the hashing encoder and model-free graphs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _onnx_export(folder: Path) -> None:
    """A model-free export for ``OnnxEncoder``: a word-level tokenizer and an embedding
    lookup standing in for the transformer."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    folder.mkdir()
    tokenizer = Tokenizer(WordLevel({"[UNK]": 0, "tide": 1, "moon": 2}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    table = numpy_helper.from_array(np.eye(3, 4, dtype=np.float32), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["hidden"])],
        "lookup",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", 4])],
        [table],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "query.onnx"))
    config = {
        "name": "lookup", "fingerprint": "lookup", "dim": 4, "similarity": "cosine",
        "window": 8, "max_seq_length": 8, "prompts": {}, "inputs": ["input_ids"],
        "heads": False, "pooling": "mean", "normalize": True,
    }  # fmt: skip
    (folder / "onnx.json").write_text(json.dumps(config))


def test_onnx_sessions_leave_no_telemetry_files(tmp_path: Path) -> None:
    _onnx_export(tmp_path / "export")
    code = (
        "import json, sys; from pathlib import Path\n"
        "from twinsearch.encoders.onnx import OnnxEncoder\n"
        "folder = Path(sys.argv[1])\n"
        "encoder = OnnxEncoder(folder, json.loads((folder / 'onnx.json').read_text()))\n"
        "print(encoder.encode_queries(['moon tide']).tolist())\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "ORT_DISABLE_TELEMETRY")
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "export")],
        env={**env, "HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == [pytest.approx([0.0, 0.7071, 0.7071, 0.0], abs=1e-4)]
    assert list(home.rglob("*")) == []  # onnxruntime's official builds write ~/.cache/Microsoft
