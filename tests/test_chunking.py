from __future__ import annotations

from itertools import pairwise

import pytest

from twinsearch.encoders.hashing import WordTokenizer
from twinsearch.errors import ConfigError
from twinsearch.indexer.chunking import ChunkSettings, chunk_document
from twinsearch.nouns import Document

WORDS = [f"w{i}" for i in range(100)]


def _chunks(text: str, window: int, overlap: int, title: str = ""):  # type: ignore[no-untyped-def]
    doc = Document("d", text, title)
    return list(chunk_document(doc, WordTokenizer(), ChunkSettings(window, overlap)))


def test_short_document_is_one_chunk_with_all_its_text() -> None:
    [chunk] = _chunks("  alpha beta gamma  ", window=10, overlap=2)
    assert chunk.text == "alpha beta gamma"
    assert (chunk.start, chunk.end) == (2, 18)


def test_windows_have_the_size_and_overlap_asked_for() -> None:
    chunks = _chunks(" ".join(WORDS), window=10, overlap=3)
    tokens = [c.text.split() for c in chunks]
    assert all(len(t) == 10 for t in tokens[:-1])
    for a, b in pairwise(tokens):
        assert a[-3:] == b[:3]
    assert tokens[0][0] == "w0" and tokens[-1][-1] == "w99"
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_nothing_is_lost_and_offsets_point_into_the_text() -> None:
    text = "\n\n".join(" ".join(WORDS[i : i + 7]) + "." for i in range(0, 100, 7))
    chunks = _chunks(text, window=12, overlap=4)
    covered: set[str] = set()
    for c in chunks:
        assert text[c.start : c.end] == c.text
        covered.update(c.text.replace(".", " ").split())
    assert covered == set(WORDS)
    assert chunks[-1].end == len(text)


def test_last_window_ends_at_the_last_token_without_an_empty_tail() -> None:
    chunks = _chunks(" ".join(WORDS[:20]), window=10, overlap=0)
    assert [c.text.split()[0] for c in chunks] == ["w0", "w10"]


def test_a_title_takes_room_in_every_window_and_heads_the_encoder_input() -> None:
    doc = Document("d", " ".join(WORDS), "Big Title")
    chunks = list(chunk_document(doc, WordTokenizer(), ChunkSettings(12, 2)))
    # 2 title tokens + 1 separator leave 9 tokens of text per window.
    assert all(len(c.text.split()) == 9 for c in chunks[:-1])
    assert chunks[1].input.startswith("Big Title\nw7 ")


def test_a_title_already_in_the_text_is_not_repeated() -> None:
    doc = Document("d", "# Big Title\nsome body text", "Big Title")
    [chunk] = chunk_document(doc, WordTokenizer(), ChunkSettings(12, 2))
    assert chunk.input == chunk.text


def test_empty_text_gives_no_chunks() -> None:
    assert _chunks("   \n ", window=10, overlap=2) == []


def test_truncate_gives_one_chunk_of_title_and_whole_text() -> None:
    doc = Document("d", " ".join(WORDS), "Big Title")
    [chunk] = chunk_document(doc, WordTokenizer(), ChunkSettings(10, 2, truncate=True))
    assert chunk.text == " ".join(WORDS[:10])
    assert chunk.input == "Big Title " + doc.text  # the model cuts it at its own limit


@pytest.mark.parametrize("window,overlap", [(4, 0), (16, 9), (16, -1)])
def test_impossible_settings_are_refused(window: int, overlap: int) -> None:
    with pytest.raises(ConfigError):
        ChunkSettings(window, overlap)


@pytest.mark.slow
def test_real_tokenizer_windows_fit_the_model(real_encoder) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(f"The experiment number {i} measured photosynthesis rates." for i in range(200))
    doc = Document("d", text, "Photosynthesis experiments")
    settings = ChunkSettings(real_encoder.window, 32)
    chunks = list(chunk_document(doc, real_encoder.tokenizer, settings))
    assert len(chunks) > 5
    tokenizer = real_encoder.model.tokenizer
    for c in chunks:
        ids = tokenizer(c.input)["input_ids"]
        assert len(ids) <= real_encoder.model.max_seq_length
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in pairwise(chunks):
        assert b.start < a.end  # consecutive windows overlap
