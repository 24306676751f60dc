"""The document encoder's fast paths: each agrees with torch, the gate refuses one that
drifts, sorted batches keep every vector on its own text, and collections say what
encoded them."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.encoders.fast import (
    GATE_COSINE,
    INT8_COSINE,
    GatedEncoder,
    Route,
    candidates,
    document_encoder,
)
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

    damaged = tmp_path / "models"
    shutil.copytree(models, damaged)
    _damage(onnx.folder_for(damaged, real_encoder.fingerprint), made_so=True)

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


def test_sorted_batches_write_every_vector_on_its_own_chunk(
    real_encoder: Any, tmp_path: Path
) -> None:
    from twinsearch.collection import point_id
    from twinsearch.stores import connect

    data = tmp_path / "data"
    args = ["index", str(EXAMPLES / "corpus"), "--runtime", "onnx", "--data-dir", str(data)]
    assert runner.invoke(app, [*args, "--batch-size", "4"]).exit_code == 0
    chunking = ChunkSettings(real_encoder.window, 32)
    chunks = {
        point_id(d.root, d.doc_id, c.index): (d.doc_id, c)
        for d in Corpus([EXAMPLES / "corpus"])
        for c in chunk_document(d, real_encoder.tokenizer, chunking)
    }
    client = connect(data_dir=data)
    try:
        points = [p for page in client.collection("default").points() for p in page]
    finally:
        client.close()
    assert sorted(str(p.id) for p in points) == sorted(chunks)
    expected = real_encoder.encode_documents([chunks[str(p.id)][1].input for p in points])
    for point, vector in zip(points, expected, strict=True):
        doc_id, chunk = chunks[str(point.id)]
        assert (point.payload["doc_id"], point.payload["text"]) == (doc_id, chunk.text)
        assert float(np.asarray(point.vector) @ vector) >= GATE_COSINE, doc_id


def _index_in_a_process(data: Path, *options: str) -> tuple[bool, str]:
    """`twinsearch index` of the sample corpus in a process of its own: whether it imported
    torch, and what it said."""
    code = (
        "import sys; from twinsearch.cli.app import main\n"
        "try:\n    main()\n"
        "finally:\n    print('TORCH', 'torch' in sys.modules, file=sys.stderr)\n"
    )
    command = [sys.executable, "-c", code, "index", str(EXAMPLES / "corpus"), *options]
    done = subprocess.run(
        [*command, "--data-dir", str(data)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return "TORCH True" in done.stderr, done.stderr


def test_after_the_first_run_the_export_stands_in_for_torch(tmp_path: Path) -> None:
    data = tmp_path / "data"
    torch_loaded, _ = _index_in_a_process(data, "--runtime", "openvino", "-c", "first")
    assert torch_loaded  # the model loads once, to be exported
    torch_loaded, said = _index_in_a_process(data, "--runtime", "openvino", "-c", "second")
    assert not torch_loaded, said
    recorded = _info(data, "second")["runtime"]
    assert recorded["runtime"] == "openvino" and recorded["min_cosine"] >= GATE_COSINE
    hits = runner.invoke(app, ["search", "coral bleaching", "-c", "second", "--json",
                               "--data-dir", str(data)])  # fmt: skip
    assert json.loads(hits.stdout)[0]["doc_id"] == "science/coral-reefs.md"
    # `--runtime torch` still loads the model itself.
    torch_loaded, _ = _index_in_a_process(data, "--runtime", "torch", "-c", "third")
    assert torch_loaded and _info(data, "third")["runtime"]["runtime"] == "torch"


def test_an_export_damaged_after_it_was_made_does_not_stand_in_for_torch(
    real_encoder: Any, tmp_path: Path
) -> None:
    from twinsearch.encoders import DEFAULT_MODEL, model_path, onnx
    from twinsearch.session import indexing_encoder
    from twinsearch.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", runtime="onnx", threads=2)
    models = settings.data_dir / "models"
    onnx.export(real_encoder, models)
    onnx.remember_source(models, model_path(DEFAULT_MODEL), real_encoder.fingerprint)
    stands_in = indexing_encoder(settings, DEFAULT_MODEL)
    assert isinstance(stands_in, GatedEncoder) and not hasattr(stands_in.reference, "model")
    folder = onnx.folder_for(models, real_encoder.fingerprint)
    notes: list[str] = []
    # The runtime no longer gives the model's vectors of the check texts...
    with np.load(folder / "check.npz") as check:
        kept = {name: check[name] for name in check.files}
    np.savez(folder / "check.npz", **{**kept, "documents": np.roll(kept["documents"], 1, 0)})
    encoder = indexing_encoder(settings, DEFAULT_MODEL, notes.append)
    assert hasattr(encoder.reference, "model") and "has drifted from the model" in notes[-1]
    np.savez(folder / "check.npz", **kept)
    # ... or its weights changed on disk: the model itself loads, and exports itself again.
    _damage(folder)
    assert not onnx.intact(folder)
    encoder = indexing_encoder(settings, DEFAULT_MODEL, notes.append)
    assert isinstance(encoder, GatedEncoder) and hasattr(encoder.reference, "model")
    assert "has changed since it was made" in notes[-1]
    assert "loading the model on torch" in notes[-1]
    assert onnx.intact(folder)


def _damage(folder: Path, made_so: bool = False) -> None:
    """Part of the weights of the export in ``folder`` overwritten: still loadable, its
    vectors moved. ``made_so``: as if it had been made so (its record of its files agrees),
    which only the gate can then see."""
    from twinsearch.encoders.onnx.layout import files_hash

    weights = folder / "query.onnx.data"
    data = bytearray(weights.read_bytes())
    noise = np.random.default_rng(0).normal(0, 0.05, 200_000).astype(np.float32).tobytes()
    data[len(data) // 2 : len(data) // 2 + len(noise)] = noise
    weights.write_bytes(bytes(data))
    if made_so:
        config = json.loads((folder / "onnx.json").read_text())
        config["files_hash"] = files_hash(folder)
        (folder / "onnx.json").write_text(json.dumps(config))


def test_int8_is_quantized_once_on_the_corpus_and_asked_for_only(
    real_encoder: Any, models: Path, inputs: list[str], tmp_path: Path
) -> None:
    pytest.importorskip("nncf")
    from twinsearch.encoders import onnx
    from twinsearch.encoders.onnx.runtime import openvino_precisions

    if "int8" not in openvino_precisions():
        pytest.skip("no int8 on this CPU")
    assert all(p.precision != "int8" for p in candidates(real_encoder, "auto", "auto", True))
    own = tmp_path / "models"
    shutil.copytree(models, own)
    # A copy: a fast path, once chosen, lets go of its reference's model.
    encoder = document_encoder(copy.copy(real_encoder), own, precision="int8", threads=2)
    vectors = encoder.encode_documents(inputs)
    assert encoder.choice is not None
    assert (encoder.choice.runtime, encoder.choice.precision) == ("openvino", "int8")
    assert _cosines(vectors, real_encoder.encode_documents(inputs)).min() >= INT8_COSINE
    calibration = onnx.folder_for(own, real_encoder.fingerprint) / "int8" / "calibration.json"
    made = calibration.stat().st_mtime_ns
    again = document_encoder(copy.copy(real_encoder), own, precision="int8", threads=2)
    again.encode_documents(inputs[:4])
    assert again.choice is not None and again.choice.precision == "int8"
    assert calibration.stat().st_mtime_ns == made  # kept, not made again


def test_openvino_and_nncf_load_without_their_telemetry(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from twinsearch.encoders.onnx.runtime import openvino_module\n"
        "openvino_module()\n"
        "try:\n"
        "    from twinsearch.encoders.onnx.quantized import _nncf\n"
        "    _nncf()\n"
        "except Exception:\n"
        "    pass  # without the int8 extra\n"
        "print('openvino_telemetry' in sys.modules)\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "False", done.stderr
    assert list(home.iterdir()) == []  # no client id, no usage count
