"""Running an export: the ``Encoder`` protocol on onnxruntime and tokenizers, without torch."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsearch.encoders.base import span_means
from twinsearch.encoders.onnx.layout import (
    CHECK_FILE,
    HEADS_FILE,
    INT8_DIR,
    MODEL_FILE,
    REFERENCE_COSINE,
    TOKENIZER_FILE,
    checked_config,
    files_hash,
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


OPENVINO_PRECISIONS = ("fp32", "bf16")
INT8_MODEL = "model.xml"
"""In ``INT8_DIR`` of an export: the graph quantized to int8 (``onnx.quantized``)."""


@contextmanager
def without_telemetry() -> Iterator[None]:
    """Imports made inside see no openvino-telemetry package. OpenVINO's own import sets up
    the telemetry of its model-conversion tool (a client id and a usage count under the
    home folder, events on conversion, all on unless a consent file says no), and NNCF's
    sends events of its own; without the package both use their no-op stand-ins."""
    kept = sys.modules.get("openvino_telemetry")
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if kept is None:
            del sys.modules["openvino_telemetry"]
        else:
            sys.modules["openvino_telemetry"] = kept


def openvino_module() -> Any:
    """OpenVINO's runtime, its telemetry off. It reads the ONNX export itself."""
    with without_telemetry():
        import openvino

    return openvino


def openvino_precisions() -> tuple[str, ...]:
    """The precisions OpenVINO runs natively on this CPU (int8 too); () without OpenVINO."""
    try:
        core = openvino_module().Core()
    except ImportError:
        return ()
    capabilities = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return tuple(p for p in (*OPENVINO_PRECISIONS, "int8") if p.upper() in capabilities)


def _onnxruntime_runner(path: Path, threads: int | None) -> Any:
    onnxruntime = _onnxruntime()
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)[0]


def _openvino_runner(folder: Path, threads: int | None, precision: str) -> Any:
    openvino = openvino_module()
    path = folder / INT8_DIR / INT8_MODEL if precision == "int8" else folder / MODEL_FILE
    if not path.exists():
        raise ModelError(f"no {precision} model in {folder}")
    core = openvino.Core()
    config: dict[str, Any] = {
        # int8: what stays in floating point keeps fp32, not to add bf16's rounding to it.
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        "PERFORMANCE_HINT": "LATENCY",
    }

    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()
    return lambda feeds: request.infer(feeds)[0]


class OnnxEncoder:
    """The ``Encoder`` protocol over an exported model, run by onnxruntime (the default:
    what a search loads quickest) or OpenVINO, in fp32, bf16 or int8, without torch.

    Documents are encoded in batches of ``batch_size`` texts of similar length (sorted
    within each call), so that little of a batch is padding; each can also give the mean
    vector of its sentences' tokens (``encode_documents_with_sentences``).
    """

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        threads: int | None = None,
        *,
        runtime: str = "onnx",
        precision: str = "fp32",
        batch_size: int = 32,
    ) -> None:
        import numpy as np
        from tokenizers import Tokenizer

        self.config = config
        self.name = str(config["name"])
        self.fingerprint = str(config["fingerprint"])
        self.dim = int(config["dim"])
        self.similarity = str(config["similarity"])
        self.window = int(config["window"])
        self.runtime, self.precision, self.batch_size = runtime, precision, batch_size
        self._tok = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self._tok.no_padding()
        self._tok.enable_truncation(int(config["max_seq_length"]))
        self.tokenizer = _Spans(folder / TOKENIZER_FILE)
        if runtime == "openvino" and precision in (*OPENVINO_PRECISIONS, "int8"):
            self._run = _openvino_runner(folder, threads, precision)
        elif runtime == "onnx" and precision == "fp32":
            self._run = _onnxruntime_runner(folder / MODEL_FILE, threads)
        else:
            raise ModelError(
                f"no {precision} on {runtime}; choose from fp32, or openvino bf16 or int8"
            )
        self.folder = folder
        self._heads: dict[str, Any] = {}
        if config.get("heads"):
            with np.load(folder / HEADS_FILE) as arrays:
                self._heads = {name: arrays[name] for name in arrays.files}
        self.padding = [0, 0]
        """Padding and real tokens of the documents encoded so far."""
        self.checked_cosine = 1.0
        """Least cosine with the model's own vectors where it was checked (``reference``)."""

    def _head(self, route: str, pooled: np.ndarray) -> np.ndarray:
        if not self._heads:
            return pooled
        out = pooled @ self._heads[f"{route}_weight"].T
        bias = self._heads.get(f"{route}_bias")
        return out + bias if bias is not None else out

    def _hidden(self, encoded: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """The last hidden states of a batch of tokenized texts, and its attention mask."""
        import numpy as np

        feeds = self.feeds(encoded)
        hidden = self._run({n: feeds[n] for n in self.config["inputs"]})
        return np.asarray(hidden, dtype=np.float32), feeds["attention_mask"]

    def feeds(self, encoded: Sequence[Any]) -> dict[str, np.ndarray]:
        """A batch of tokenized texts padded to the longest, as the model's possible inputs
        (the ones it takes are named in its config's ``inputs``)."""
        import numpy as np

        width = max(len(e.ids) for e in encoded)
        ids = np.zeros((len(encoded), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encoded):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def _finish(self, route: str, pooled: np.ndarray) -> np.ndarray:
        import numpy as np

        pooled = self._head(route, pooled)
        # Search wants unit vectors whatever the model's last module is.
        pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import numpy as np

        if self.config["pooling"] == "cls":
            return hidden[:, 0]
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)

    def tokenize(self, route: str, texts: Sequence[str]) -> list[Any]:
        """``texts`` as the model takes them (prompt, truncation): what an encode call
        does first, which a caller can do ahead, in another thread (``prepared``)."""
        prompt = self.config["prompts"].get(route, "")
        return list(self._tok.encode_batch([prompt + text for text in texts]))

    def _encode(
        self,
        route: str,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]] | None = None,
        prepared: Sequence[Any] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        import numpy as np

        prompt = self.config["prompts"].get(route, "")
        encoded = list(prepared) if prepared is not None else self.tokenize(route, texts)
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids))
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        sentences: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            hidden, mask = self._hidden([encoded[i] for i in rows])
            if route == "document":
                real = int(mask.sum())
                self.padding[0] += mask.size - real
                self.padding[1] += real
            vectors[rows] = self._finish(route, self._pool(hidden, mask))
            if spans is None:
                continue
            for row, i in enumerate(rows):
                pooled = span_means(hidden[row], encoded[i].offsets, spans[i], len(prompt))
                if pooled is not None:
                    sentences[i] = self._finish(route, pooled)
        return vectors, sentences

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode("query", texts)[0]

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode("document", texts)[0]

    def encode_documents_with_sentences(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        prepared: Sequence[Any] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """Documents and their sentences; ``prepared``: the texts' ``tokenize``d form."""
        return self._encode("document", texts, spans, prepared)

    def close(self) -> None:
        """The runtime's session and buffers let go of (the encoder cannot encode after)."""
        self._run = _closed


def _closed(feeds: Any) -> Any:
    raise ModelError("this encoder was closed")


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


def load(
    models_dir: Path,
    fingerprint: str,
    threads: int | None = None,
    *,
    runtime: str = "onnx",
    precision: str = "fp32",
    batch_size: int = 32,
) -> OnnxEncoder:
    """The exported encoder for ``fingerprint``; ``ModelError`` saying why it cannot be used."""
    folder = folder_for(models_dir, fingerprint)
    config = checked_config(folder, fingerprint)
    try:
        return OnnxEncoder(
            folder, config, threads, runtime=runtime, precision=precision, batch_size=batch_size
        )
    except ImportError:
        raise ModelError(
            f"{runtime} is not installed (pip install openvino), or pass --runtime onnx"
        ) from None
    except ModelError:
        raise
    except Exception as exc:  # onnxruntime and tokenizers raise their own types
        raise ModelError(f"broken ONNX export in {folder}: {first_line(exc)[:200]}") from None


def reference(
    models_dir: Path,
    fingerprint: str,
    name: str,
    threads: int | None = None,
    batch_size: int = 32,
) -> OnnxEncoder:
    """The export of the model with ``fingerprint`` on onnxruntime in fp32, to stand in for
    the model on torch (named ``name``): checked first to be, byte for byte, the export
    made from the model, and to give the model's own vectors of the texts it was checked on
    then (the runtime that runs it may have changed since). ``ModelError`` where it cannot
    stand in (no export, one of an older format, one changed or drifted since)."""
    import numpy as np

    encoder = load(models_dir, fingerprint, threads, batch_size=batch_size)
    if encoder.config.get("files_hash") != files_hash(encoder.folder):
        raise ModelError(f"the export in {encoder.folder} has changed since it was made")
    try:
        with np.load(encoder.folder / CHECK_FILE) as check:
            texts = [str(t) for t in check["texts"]]
            queries, documents = check["queries"], check["documents"]
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"the export in {encoder.folder} has no check vectors ({exc})") from None
    cosine = float(
        min(
            np.sum(encoder.encode_queries(texts) * queries, axis=1).min(),
            np.sum(encoder.encode_documents(texts) * documents, axis=1).min(),
        )
    )
    encoder.padding = [0, 0]
    if cosine < REFERENCE_COSINE:
        raise ModelError(
            f"the export in {encoder.folder} has drifted from the model (cosine {cosine:.6f})"
        )
    encoder.name, encoder.checked_cosine = name, cosine
    return encoder
