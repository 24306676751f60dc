"""The query side of a sentence-transformers model as ONNX, run without torch.

Importing torch and sentence-transformers costs seconds; onnxruntime and tokenizers load in
a fraction of that, which is what makes a cold `twinsearch search` quick. The export is made
from the loaded model, checked against it (cosine on sample texts) before it is kept, and
kept beside the collections under the model's fingerprint.

Exported: a transformer, mean or CLS pooling, and an optional normalisation; and the
half-twin `twinsearch train` makes, the same with a linear head per route after pooling
(the heads are kept as arrays and applied with numpy). Anything else stays on torch.
"""

from __future__ import annotations

import array
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsearch.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

MODEL_FILE = "query.onnx"
WEIGHTS_FILE = "query.onnx.data"
# 2: the weights in WEIGHTS_FILE, beside the graph. Exports of an older format are redone.
FORMAT = 2
CONFIG_FILE = "onnx.json"
TOKENIZER_FILE = "tokenizer.json"
HEADS_FILE = "heads.npz"
MIN_COSINE = 0.999
SAMPLES = [
    "how do plants turn sunlight into sugar",
    "When did the first humans land on the Moon?",
    "TCP three-way handshake SYN ACK",
    "a",
    "Vaccines train the immune system by showing it a harmless piece of a pathogen, "
    "such as an inactivated virus or messenger RNA, so that memory cells remain for years.",
]


def folder_for(models_dir: Path, fingerprint: str) -> Path:
    return models_dir / fingerprint


def _linear_heads(router: Any) -> dict[str, Any] | None:
    """Per-route (weight, bias) of a Router whose routes are one linear Dense each."""
    routes = getattr(router, "sub_modules", {})
    if set(routes) != {"query", "document"}:
        return None
    heads = {}
    for route, modules in routes.items():
        modules = list(modules)
        if len(modules) != 1 or type(modules[0]).__name__ != "Dense":
            return None
        dense = modules[0]
        if not dense.get_config_dict().get("activation_function", "").endswith("Identity"):
            return None
        bias = dense.linear.bias
        heads[route] = (
            dense.linear.weight.detach().cpu().float().numpy(),
            bias.detach().cpu().float().numpy() if bias is not None else None,
        )
    return heads


def _architecture(model: Any) -> dict[str, Any] | None:
    """Pooling, heads and normalisation, if the model is a kind this module can run."""
    modules = list(model)
    names = [type(m).__name__ for m in modules]
    heads = None
    if names[:3] == ["Transformer", "Pooling", "Router"]:
        heads = _linear_heads(modules[2])
        if heads is None:
            return None
        names = [n for n in names if n != "Router"]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    pooling = modules[1].get_config_dict()
    mode = pooling.get("pooling_mode")
    if mode not in ("mean", "cls") or not pooling.get("include_prompt", True):
        return None
    return {"pooling": mode, "normalize": names[-1] == "Normalize", "heads": heads}


def export(encoder: Any, models_dir: Path) -> Path | None:
    """Export ``encoder``'s model (a ``SentenceTransformerEncoder``) unless it is there
    already; None if its architecture is not one this module runs."""
    target = folder_for(models_dir, encoder.fingerprint)
    if _format(target) >= FORMAT:
        return target
    architecture = _architecture(encoder.model)
    if architecture is None:
        return None
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=models_dir))
    try:
        _export_into(staging, encoder, architecture)
        if _format(target) < FORMAT:  # not made meanwhile by another process
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _format(folder: Path) -> int:
    """The format of the export in ``folder``: 0 if there is none, 1 before formats."""
    try:
        return int(json.loads((folder / CONFIG_FILE).read_text()).get("format", 1))
    except (OSError, ValueError, AttributeError):
        return 0


def _export_into(staging: Path, encoder: Any, architecture: dict[str, Any]) -> None:
    import onnx
    import torch

    model = encoder.model
    transformer = model[0].auto_model.eval()
    sample = model.tokenizer(["hello", "a longer sample"], padding=True, return_tensors="pt")
    # The sample must sit where the weights do: on a GPU machine the model loads on cuda.
    sample = sample.to(next(transformer.parameters()).device)
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *args: Any) -> Any:
            return self.transformer(**dict(zip(inputs, args, strict=True))).last_hidden_state

    axes = {name: {0: "batch", 1: "tokens"} for name in [*inputs, "hidden"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer advisories about the HF model's Python code
        torch.onnx.export(
            Hidden(),
            tuple(sample[n] for n in inputs),
            str(staging / MODEL_FILE),
            input_names=inputs,
            output_names=["hidden"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    # The weights in a file of their own, which onnxruntime maps into memory instead of
    # parsing and copying them out of the graph: a session then loads in half the time.
    graph = onnx.load(str(staging / MODEL_FILE))
    onnx.save_model(
        graph,
        str(staging / MODEL_FILE),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS_FILE,
        size_threshold=1024,
    )
    (staging / TOKENIZER_FILE).write_text(model.tokenizer.backend_tokenizer.to_str())
    heads = architecture.pop("heads")
    import numpy as np

    if heads:
        arrays = {f"{route}_weight": w for route, (w, _) in heads.items()}
        arrays.update({f"{route}_bias": b for route, (_, b) in heads.items() if b is not None})
        np.savez(staging / HEADS_FILE, **arrays)
    config = {
        "format": FORMAT,
        "name": encoder.name,
        "fingerprint": encoder.fingerprint,
        "dim": encoder.dim,
        "similarity": encoder.similarity,
        "window": encoder.window,
        "max_seq_length": int(model.max_seq_length),
        "prompts": dict(model.prompts or {}),
        "inputs": inputs,
        "heads": bool(heads),
        **architecture,
    }
    exported = OnnxEncoder(staging, config)
    cosines = np.concatenate(
        [
            np.sum(exported.encode_queries(SAMPLES) * encoder.encode_queries(SAMPLES), axis=1),
            np.sum(exported.encode_documents(SAMPLES) * encoder.encode_documents(SAMPLES), axis=1),
        ]
    )
    config["min_cosine"] = float(cosines.min())
    if config["min_cosine"] < MIN_COSINE:
        raise ModelError(
            f"the ONNX export of {encoder.name!r} disagrees with torch (cosine "
            f"{config['min_cosine']:.4f} < {MIN_COSINE}); searches will use torch"
        )
    # Written last: an export without it is never used.
    (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2))


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


def _checked_config(folder: Path, fingerprint: str) -> dict[str, Any]:
    try:
        config: dict[str, Any] = json.loads((folder / CONFIG_FILE).read_text())
    except FileNotFoundError:
        raise ModelError(f"no ONNX export in {folder}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable ONNX export in {folder}: {exc}") from None
    if config.get("fingerprint") != fingerprint or config.get("min_cosine", 0) < MIN_COSINE:
        raise ModelError(f"the ONNX export in {folder} does not match the model")
    return config


def load(models_dir: Path, fingerprint: str, threads: int | None = None) -> OnnxEncoder:
    """The exported encoder for ``fingerprint``; ``ModelError`` saying why it cannot be used."""
    folder = folder_for(models_dir, fingerprint)
    config = _checked_config(folder, fingerprint)
    try:
        return OnnxEncoder(folder, config, threads)
    except Exception as exc:  # onnxruntime and tokenizers raise their own types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"broken ONNX export in {folder}: {first[:200]}") from None


class ForkedQuery:
    """An encoder whose first query is embedded in a forked child process, which loads the
    ONNX session there while this process does something else (opens the store): on two
    cores the two start-up costs overlap instead of adding up. This process never imports
    numpy for it: the vector comes back as an ``array.array`` of float32.

    Any other text, or a child that fails, is embedded in this process by the encoder
    ``fallback`` returns (which should say why it is needed).
    """

    def __init__(
        self,
        models_dir: Path,
        fingerprint: str,
        query: str,
        fallback: Callable[[], Any],
        threads: int | None = None,
    ) -> None:
        config = _checked_config(folder_for(models_dir, fingerprint), fingerprint)
        self.name = str(config["name"])
        self.fingerprint = str(config["fingerprint"])
        self.dim = int(config["dim"])
        self.similarity = str(config["similarity"])
        self.window = int(config["window"])
        self._query = query
        self._fallback = fallback
        self._encoder: Any = None
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: embed, hand the vector over, and leave without cleanup
            try:
                os.close(read)
                vector = load(models_dir, fingerprint, threads).encode_queries([query])[0]
                os.write(write, vector.astype("<f4").tobytes())
            finally:
                os._exit(0)
        os.close(write)
        self._pid: int | None = pid
        self._read = read

    def _collect(self) -> list[array.array[float]] | None:
        data = b""
        while chunk := os.read(self._read, 65536):
            data += chunk
        os.close(self._read)
        os.waitpid(self._pid or 0, 0)
        self._pid = None
        if len(data) != self.dim * 4:
            return None
        vector = array.array("f", data)
        if sys.byteorder != "little":
            vector.byteswap()
        return [vector]

    def _here(self) -> Any:
        if self._encoder is None:
            self._encoder = self._fallback()
        return self._encoder

    @property
    def tokenizer(self) -> Any:
        return self._here().tokenizer

    def encode_queries(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
        if self._pid is not None:
            vector = self._collect()
            if vector is not None and list(texts) == [self._query]:
                return vector
        return self._here().encode_queries(texts)

    def encode_documents(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
        return self._here().encode_documents(texts)

    def close(self) -> None:
        """Reap the child if its vector was never asked for."""
        if self._pid is not None:
            self._collect()
