"""The passage of a hit: sentences, the choice among them, and a sentence a chunk cuts."""

from __future__ import annotations

import numpy as np
import pytest

from twinsearch.encoders import HashingEncoder
from twinsearch.nouns import Document
from twinsearch.passages import (
    MAX_CHARS,
    choose,
    pack,
    passage_of,
    sentence_spans,
    unpack,
)
from twinsearch.search import Searcher
from twinsearch.stores import CollectionSpec, connect


def _sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def test_sentences_end_at_stops_blank_lines_and_list_items_not_at_abbreviations() -> None:
    text = (
        "Tides follow the moon, e.g. twice a day. Dr. Lee measured them!\n"
        "Was it right? Yes.\n\n"
        "# Notes\n- first item\n- second item\n"
    )
    assert _sentences(text) == [
        "Tides follow the moon, e.g. twice a day.",
        "Dr. Lee measured them!",
        "Was it right?",
        "Yes.",
        "# Notes",
        "- first item",
        "- second item",
    ]


def test_a_sentence_longer_than_a_passage_is_cut_at_words() -> None:
    text = " ".join(f"word{i}" for i in range(200))
    spans = sentence_spans(text)
    assert len(spans) > 1 and all(b - a <= MAX_CHARS for a, b in spans)
    assert " ".join(text[a:b] for a, b in spans) == text


def test_the_best_sentence_is_chosen_with_its_better_neighbours_within_the_limit() -> None:
    text = "Alpha one. Beta two. Gamma three. Delta four. Epsilon five."
    spans = sentence_spans(text)
    start, end = choose(text, spans, scores=[0.1, 0.2, 0.9, 0.5, 0.0])
    assert text[start:end] == "Beta two. Gamma three. Delta four."
    # Terms break a tie between equally close sentences.
    terms = {"alpha": 1, "one": 2, "epsilon": 3, "five": 4}

    def analysed(t: str) -> set[int]:
        return {terms[w] for w in t.lower().replace(".", "").split() if w in terms}

    start, end = choose(text, spans, scores=[0.5] * 5, query_terms={3, 4}, terms=analysed)
    assert "Epsilon five." in text[start:end]


def test_sentence_vectors_keep_their_signs_through_the_payload() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, 20)).astype(np.float32)
    assert np.array_equal(unpack(pack(vectors), 20), np.where(vectors > 0, 1.0, -1.0))


def test_a_sentence_cut_by_the_chunk_is_completed_from_its_neighbour() -> None:
    # The document "One. Two three four. Five." in two overlapping chunks.
    first = {"text": "One. Two three", "start": 0, "end": 14, "chunk": 0, "n_chunks": 2}
    second = {"text": "three four. Five.", "start": 9, "end": 26, "chunk": 1, "n_chunks": 2}
    for payload in (first, second):
        payload.update(line=1, column=1 + int(payload["start"]))  # type: ignore[call-overload]
    chunks = [first, second]
    passage = passage_of(second, neighbour=lambda i: chunks[i])
    assert passage.text.startswith("Two three four.")
    assert (passage.line, passage.column) == (1, 6)
    passage = passage_of(first, neighbour=lambda i: chunks[i])
    assert passage.text.endswith("Two three four.")


@pytest.fixture
def searcher() -> Searcher:
    """A collection of two documents of several chunks each, indexed as `index` does."""
    from twinsearch.indexer.chunking import ChunkSettings
    from twinsearch.indexer.pipeline import Indexer
    from twinsearch.sparse import Bm25, Bm25Settings

    filler = " ".join(f"Filler sentence {i} says little of note." for i in range(4))
    docs = [
        Document(
            "mid",
            "The answer is mid-chunk. " + filler
            + " Glaciers carve fjords by grinding bedrock under moving ice. " + filler,
            title="Ice",
        ),
        Document(
            "edge",
            " ".join(f"Opening line number {i} of the page." for i in range(9))
            + " Volcanic vents feed strange tubeworm colonies on the deep ocean floor today."
            + " Closing remark.",
            title="Deep",
        ),
    ]  # fmt: skip
    encoder = HashingEncoder(dim=512, window=48)
    client = connect(url=":memory:")
    store = client.collection("p")
    store.create(CollectionSpec(dim=encoder.dim, metadata={"bm25": Bm25Settings().as_dict()}))
    Indexer(encoder, store, ChunkSettings(48, 8), bm25=Bm25(Bm25Settings())).run(docs)
    return Searcher.for_store(store, encoder)


@pytest.mark.parametrize("mode", ["dense", "hybrid", "bm25"])
def test_the_passage_holds_the_answer_in_the_middle_of_a_chunk(
    searcher: Searcher, mode: str
) -> None:
    [hit] = searcher.search("how do glaciers carve fjords", 1, mode)
    assert hit.doc_id == "mid" and not hit.snippet.startswith("Glaciers")
    assert "Glaciers carve fjords by grinding bedrock under moving ice." in hit.passage
    assert len(hit.passage) <= MAX_CHARS
    shown = {hit.passage[a:b].lower() for a, b in hit.highlights}
    assert {"glaciers", "carve", "fjords"} <= shown


def test_the_passage_across_a_chunk_boundary_is_whole(searcher: Searcher) -> None:
    [hit] = searcher.search("tubeworm colonies at volcanic vents", 1, "dense")
    assert hit.doc_id == "edge"
    answer = "Volcanic vents feed strange tubeworm colonies on the deep ocean floor today."
    # The chunks cut that sentence; the passage puts it back together.
    stored = [p for _, p in searcher.store.scroll(["text"]) if "tubeworm" in p["text"]]
    assert not any(answer in p["text"] for p in stored)
    assert answer in hit.passage
