"""Making an export: the query side of a loaded model traced to ONNX with torch, checked
against the model (cosine on sample texts, short and window-long) before it is kept under
the model's fingerprint, with the model's own vectors of those texts: a run that uses the
export in place of the model checks it against them first (``runtime.reference``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from twinsearch.encoders.onnx.architecture import architecture as architecture_of
from twinsearch.encoders.onnx.layout import (
    CHECK_FILE,
    CONFIG_FILE,
    FORMAT,
    HEADS_FILE,
    MIN_COSINE,
    MODEL_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    files_hash,
    folder_for,
    intact,
)
from twinsearch.errors import ModelError

SAMPLES = [
    "how do plants turn sunlight into sugar",
    "When did the first humans land on the Moon?",
    "TCP three-way handshake SYN ACK",
    "a",
    "Vaccines train the immune system by showing it a harmless piece of a pathogen, "
    "such as an inactivated virus or messenger RNA, so that memory cells remain for years.",
    # Longer than any window: every position the model has is checked.
    " ".join(
        f"Sample {i}: coral reefs bleach when warm water drives out the algae they feed on."
        for i in range(40)
    ),
]


def export(encoder: Any, models_dir: Path) -> Path | None:
    """Export ``encoder``'s model (a ``SentenceTransformerEncoder``) unless it is there
    already, intact; None if its architecture is not one the ONNX path runs."""
    target = folder_for(models_dir, encoder.fingerprint)
    if intact(target):
        return target
    architecture = architecture_of(encoder.model)
    if architecture is None:
        return None
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=models_dir))
    try:
        _export_into(staging, encoder, architecture)
        if not intact(target):  # not made meanwhile by another process
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _export_into(staging: Path, encoder: Any, architecture: dict[str, Any]) -> None:
    from twinsearch.encoders.onnx.runtime import OnnxEncoder

    model = encoder.model
    inputs = _trace(model, staging / MODEL_FILE)
    (staging / TOKENIZER_FILE).write_text(model.tokenizer.backend_tokenizer.to_str())
    heads = architecture.pop("heads")
    if heads:
        _save_heads(staging / HEADS_FILE, heads)
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
    config["min_cosine"] = _min_cosine(OnnxEncoder(staging, config), encoder, staging)
    config["files_hash"] = files_hash(staging)
    if config["min_cosine"] < MIN_COSINE:
        raise ModelError(
            f"the ONNX export of {encoder.name!r} disagrees with torch (cosine "
            f"{config['min_cosine']:.4f} < {MIN_COSINE}); searches will use torch"
        )
    # Written last: an export without it is never used.
    (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2))


def _trace(model: Any, path: Path) -> list[str]:
    """The model's transformer traced into ``path``, its output the last hidden state;
    the names of the inputs it takes."""
    import torch

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
            str(path),
            input_names=inputs,
            output_names=["hidden"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    _weights_apart(path)
    return inputs


def _weights_apart(path: Path) -> None:
    """The weights in a file of their own, which onnxruntime maps into memory instead of
    parsing and copying them out of the graph: a session then loads in half the time."""
    import onnx

    graph = onnx.load(str(path))
    onnx.save_model(
        graph,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS_FILE,
        size_threshold=1024,
    )


def _save_heads(path: Path, heads: dict[str, Any]) -> None:
    import numpy as np

    arrays = {f"{route}_weight": w for route, (w, _) in heads.items()}
    arrays.update({f"{route}_bias": b for route, (_, b) in heads.items() if b is not None})
    np.savez(path, **arrays)


def _min_cosine(exported: Any, encoder: Any, staging: Path) -> float:
    """The least cosine between ``exported``'s vectors and ``encoder``'s, both routes; the
    texts and ``encoder``'s vectors kept in ``staging``."""
    import numpy as np

    queries, documents = encoder.encode_queries(SAMPLES), encoder.encode_documents(SAMPLES)
    np.savez(staging / CHECK_FILE, texts=np.array(SAMPLES), queries=queries, documents=documents)
    cosines = np.concatenate(
        [
            np.sum(exported.encode_queries(SAMPLES) * queries, axis=1),
            np.sum(exported.encode_documents(SAMPLES) * documents, axis=1),
        ]
    )
    return float(cosines.min())
