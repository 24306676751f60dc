"""Ways to choose a hit's passage, compared like for like on the labelled check.

    python benchmarks/passage_choices.py [--questions benchmarks/passages.jsonl]

For each question the answering file is chunked as `index` chunks it, its chunk nearest the
question (by the real model) is taken, and each way of scoring that chunk's sentences picks
a passage: the first 240 characters (the old snippet), query terms alone, sentence vectors
mean-pooled from the chunk's own token vectors (float32, int8, one bit a dimension as
stored), with and without terms, and sentences encoded on their own. Counted: how often the
passage holds the answering sentence, out of the chunks that hold it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent


def _read(source: str) -> str:
    path = Path(source) if source.startswith("/") else HERE.parent / source
    if path.suffix == ".gz":
        with gzip.open(path, "rt", errors="replace") as fh:
            return fh.read()
    return path.read_text(errors="replace")


def _flat(text: str) -> str:
    return " ".join(text.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=HERE / "passages.jsonl")
    args = parser.parse_args()

    import numpy as np

    from twinsearch.encoders import load_encoder
    from twinsearch.indexer.chunking import ChunkSettings, chunk_document
    from twinsearch.nouns import Document
    from twinsearch.passages import choose, pack, sentence_spans, unpack
    from twinsearch.sparse import Bm25

    encoder = load_encoder(threads=2)
    bm25 = Bm25()

    def terms(text: str) -> set[int]:
        return set(bm25.encode_documents([text])[0].indices)

    def cosines(rows: np.ndarray, query: np.ndarray) -> list[float]:
        return list(rows @ query / np.maximum(np.linalg.norm(rows, axis=1), 1e-12))

    def quantized(rows: np.ndarray, levels: int) -> np.ndarray:
        return np.round(rows / np.abs(rows).max(axis=1, keepdims=True) * levels)

    questions = [json.loads(line) for line in args.questions.open() if line.strip()]
    settings = ChunkSettings(encoder.window, 32)
    counts: dict[str, int] = {}
    held = 0
    for q in questions:
        doc = Document(doc_id="doc", title="", text=_read(q["source"]))
        chunks = list(chunk_document(doc, encoder.tokenizer, settings))
        [query] = encoder.encode_queries([q["question"]])
        best = chunks[int(np.argmax(encoder.encode_documents([c.input for c in chunks]) @ query))]
        answer = _flat(q["answer"])
        if answer not in _flat(best.text):
            continue
        held += 1
        spans = sentence_spans(best.text)
        shift = len(best.input) - len(best.text)
        _, [pooled] = encoder.encode_documents_with_sentences(
            [best.input], [[(a + shift, b + shift) for a, b in spans]]
        )
        alone = encoder.encode_documents([best.text[a:b] for a, b in spans])
        asked = terms(q["question"])
        with_terms = {"query_terms": asked, "terms": terms}
        ways = {
            "first 240 characters": (0, 240),
            "query terms alone": choose(best.text, spans, **with_terms),  # type: ignore[arg-type]
            "pooled, float32": choose(best.text, spans, scores=cosines(pooled, query)),
            "pooled, int8": choose(best.text, spans, scores=cosines(quantized(pooled, 127), query)),
            "pooled, 1 bit (stored)": choose(
                best.text, spans, scores=cosines(unpack(pack(pooled), encoder.dim), query)
            ),
            "pooled, 1 bit + terms": choose(
                best.text,
                spans,
                scores=cosines(unpack(pack(pooled), encoder.dim), query),
                **with_terms,  # type: ignore[arg-type]
            ),
            "sentences encoded alone": choose(best.text, spans, scores=cosines(alone, query)),
        }
        for way, (start, end) in ways.items():
            counts[way] = counts.get(way, 0) + (answer in _flat(best.text[start:end]))
    print(f"{len(questions)} questions; the chunk nearest the question holds the answer for {held}")
    for way, n in counts.items():
        print(f"{way:26} {n:>3} of {held}")


if __name__ == "__main__":
    main()
