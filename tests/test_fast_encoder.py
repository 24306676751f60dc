"""The document encoder's fast paths: each agrees with torch, the gate refuses one that
drifts, sorted batches keep every vector on its own text, and collections say what
encoded them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.encoders.fast import GATE_COSINE, GatedEncoder, Route, candidates, document_encoder
from twinsearch.errors import ConfigError
from twinsearch.indexer.chunking import ChunkSettings, chunk_document
from twinsearch.indexer.sources import Corpus

from .conftest import EXAMPLES

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="module")
def models(real_encoder: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from twinsearch.encoders import onnx

    folder = tmp_path_factory.mktemp("models")
    onnx.export(real_encoder, folder)
    return folder


@pytest.fixture(scope="module")
def inputs(real_encoder: Any) -> list[str]:
    """The sample corpus's chunks as the encoder sees them: short and long texts."""
    chunking = ChunkSettings(real_encoder.window, 32)
    docs = list(Corpus([EXAMPLES / "corpus", EXAMPLES / "encyclopedia.jsonl"]))
    return [c.input for d in docs for c in chunk_document(d, real_encoder.tokenizer, chunking)]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_every_path_here_agrees_with_torch_on_the_sample_corpus(
    real_encoder: Any, models: Path, inputs: list[str]
) -> None:
    from twinsearch.encoders import onnx

    expected = real_encoder.encode_documents(inputs)
    paths = candidates(real_encoder, "auto", "auto", exported=True)
    assert Route("onnx", "fp32") in paths and paths[-1] == Route("torch", "fp32")
    for path in paths[:-1]:
        encoder = onnx.load(
            models, real_encoder.fingerprint, 2, runtime=path.runtime, precision=path.precision
        )
        got = encoder.encode_documents(inputs)
        assert _cosines(got, expected).min() >= GATE_COSINE, path
        # Sentence vectors come from the same pass on every path.
        _, [sentences] = encoder.encode_documents_with_sentences(inputs[:1], [[(0, 20)]])
        _, [reference] = real_encoder.encode_documents_with_sentences(inputs[:1], [[(0, 20)]])
        assert sentences is not None and reference is not None
        assert float(sentences[0] @ reference[0]) >= 0.999, path


def test_sorted_batches_put_every_vector_back_on_its_own_text(
    real_encoder: Any, models: Path, inputs: list[str]
) -> None:
    from twinsearch.encoders import onnx

    encoder = onnx.load(models, real_encoder.fingerprint, 2, batch_size=3)
    texts = inputs[:10] + ["a", "a much longer text " * 30]
    together = encoder.encode_documents(texts)
    for text, vector in zip(texts, together, strict=True):
        [alone] = encoder.encode_documents([text])
        assert float(vector @ alone) > 0.99999
    padding, real = encoder.padding
    assert real > 0 and padding / real < 0.5  # sorted batches of 3: little padding


def test_the_gate_refuses_a_path_whose_vectors_drift(
    real_encoder: Any, models: Path, inputs: list[str], tmp_path: Path
) -> None:
    from twinsearch.encoders import onnx

    # A damaged export: part of its weights overwritten, still loadable.
    damaged = tmp_path / "models"
    shutil.copytree(models, damaged)
    weights = onnx.folder_for(damaged, real_encoder.fingerprint) / "query.onnx.data"
    data = bytearray(weights.read_bytes())
    noise = np.random.default_rng(0).normal(0, 0.05, 200_000).astype(np.float32).tobytes()
    data[len(data) // 2 : len(data) // 2 + len(noise)] = noise
    weights.write_bytes(bytes(data))

    notes: list[str] = []
    encoder = document_encoder(
        real_encoder, damaged, runtime="auto", precision="fp32", threads=2, say=notes.append
    )
    assert isinstance(encoder, GatedEncoder)
    vectors = encoder.encode_documents(inputs)
    assert encoder.choice is not None and encoder.choice.runtime == "torch"
    assert any("drifts from the model" in note and "onnx fp32" in note for note in notes)
    assert _cosines(vectors, real_encoder.encode_documents(inputs)).min() > 0.99999
    # Asked for that path alone, the run still writes the model's own vectors, and says so.
    only = document_encoder(real_encoder, damaged, runtime="onnx", threads=2, say=notes.append)
    only.encode_documents(inputs)
    assert only.choice.runtime == "torch" and "no path asked for" in notes[-1]


def test_unknown_or_unavailable_paths_are_refused_with_the_choices(real_encoder: Any) -> None:
    with pytest.raises(ConfigError, match="choose one of auto, openvino, onnx, torch"):
        candidates(real_encoder, "tensorrt", "auto", exported=True)
    with pytest.raises(ConfigError, match="not available here; available: .*torch fp32"):
        candidates(real_encoder, "torch", "bf16", exported=True)


def _info(data: Path, name: str) -> dict[str, Any]:
    result = runner.invoke(app, ["info", "--json", "--data-dir", str(data)])
    assert result.exit_code == 0, result.stderr
    [collection] = [c for c in json.loads(result.stdout)["collections"] if c["name"] == name]
    return dict(collection)


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_a_collection_records_what_encoded_it(tmp_path: Path, runtime: str) -> None:
    data = tmp_path / "data"
    args = ["index", str(EXAMPLES / "corpus"), "--runtime", runtime, "--data-dir", str(data)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert f"chunks/s on {runtime} fp32;" in result.stderr
    recorded = _info(data, "default")["runtime"]
    assert (recorded["runtime"], recorded["precision"]) == (runtime, "fp32")
    assert recorded["used"] == [f"{runtime} fp32"] and recorded["min_cosine"] >= GATE_COSINE
    shown = runner.invoke(app, ["info", "--data-dir", str(data)]).stdout
    assert f"encoded with {runtime} fp32" in shown
    # Searches find what the fast path wrote.
    hits = runner.invoke(app, ["search", "coral bleaching", "--json", "--data-dir", str(data)])
    assert json.loads(hits.stdout)[0]["doc_id"] == "science/coral-reefs.md"
