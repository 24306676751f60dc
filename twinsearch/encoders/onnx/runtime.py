"""Running an export: the ``Encoder`` protocol on onnxruntime and tokenizers, without torch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsearch.encoders.onnx.layout import (
    HEADS_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    checked_config,
    folder_for,
)
from twinsearch.errors import ModelError, first_line

if TYPE_CHECKING:
    import numpy as np


def _onnxruntime() -> Any:
    """onnxruntime with its telemetry off. Its official builds send usage events and keep a
    device id under ~/.cache/Microsoft, both set up as the library loads: only the variable
    read then stops them; the call covers builds that do not know the variable."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    onnxruntime.disable_telemetry_events()
    return onnxruntime


class OnnxEncoder:
    """The ``Encoder`` protocol over an exported model: onnxruntime and tokenizers only."""

    def __init__(self, folder: Path, config: dict[str, Any], threads: int | None = None) -> None:
        import numpy as np
        from tokenizers import Tokenizer

        onnxruntime = _onnxruntime()
        self.config = config
        self.name = str(config["name"])
        self.fingerprint = str(config["fingerprint"])
        self.dim = int(config["dim"])
        self.similarity = str(config["similarity"])
        self.window = int(config["window"])
        self._tok = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self._tok.no_padding()
        self._tok.enable_truncation(int(config["max_seq_length"]))
        self.tokenizer = _Spans(folder / TOKENIZER_FILE)
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._heads: dict[str, Any] = {}
        if config.get("heads"):
            with np.load(folder / HEADS_FILE) as arrays:
                self._heads = {name: arrays[name] for name in arrays.files}

    def _head(self, route: str, pooled: np.ndarray) -> np.ndarray:
        if not self._heads:
            return pooled
        out = pooled @ self._heads[f"{route}_weight"].T
        bias = self._heads.get(f"{route}_bias")
        return out + bias if bias is not None else out

    def _encode(self, route: str, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        prompt = self.config["prompts"].get(route, "")
        encoded = self._tok.encode_batch([prompt + text for text in texts])
        width = max(len(e.ids) for e in encoded)
        ids = np.zeros((len(encoded), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encoded):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = self._session.run(None, {n: feeds[n] for n in self.config["inputs"]})
        if self.config["pooling"] == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        pooled = self._head(route, pooled)
        # Search wants unit vectors whatever the model's last module is.
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode("query", texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode("document", texts)

    def close(self) -> None:
        """Nothing to release: the session goes with the encoder."""


class _Spans:
    """The tokenizer for chunking, loaded when first used: queries never need it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._tok: Any = None

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        if self._tok is None:
            from tokenizers import Tokenizer

            self._tok = Tokenizer.from_file(str(self._path))
            self._tok.no_truncation()
            self._tok.no_padding()
        return list(self._tok.encode(text, add_special_tokens=False).offsets)


def load(models_dir: Path, fingerprint: str, threads: int | None = None) -> OnnxEncoder:
    """The exported encoder for ``fingerprint``; ``ModelError`` saying why it cannot be used."""
    folder = folder_for(models_dir, fingerprint)
    config = checked_config(folder, fingerprint)
    try:
        return OnnxEncoder(folder, config, threads)
    except Exception as exc:  # onnxruntime and tokenizers raise their own types
        raise ModelError(f"broken ONNX export in {folder}: {first_line(exc)[:200]}") from None
