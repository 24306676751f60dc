"""The passage of a hit: the one to three consecutive sentences of its best chunk that best
answer the query, with where the query's terms are in them.

Sentences are chosen with the twin itself. When a chunk is embedded, the encoder's token
vectors of each sentence are mean-pooled into a sentence vector (the vectors the document
pass computes anyway, so a sentence costs no extra encoding: see ``Encoder`` and
``encode_with_sentences``); they are stored with the chunk, one bit a dimension, and a
search scores the sentences of its hits against the query vector, fused with the query's
analysed terms in hybrid and bm25 modes. Collections indexed before sentence vectors were
stored fall back to the terms alone.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MAX_CHARS = 320
"""The longest passage shown, in characters; a longer sentence is cut at a word."""
MAX_SENTENCES = 3
TERM_WEIGHT = 0.2
"""What matching every analysed query term adds to a sentence's cosine (hybrid, bm25)."""

# Where a sentence ends: after . ! ? (and closing quotes or brackets) and a space; at a
# blank line; before a line that starts a list item, a heading or a quote.
_BREAK = re.compile(
    r"(?<=[.!?])[\"')\]]*\s+(?=\S)"
    r"|\n[ \t\r]*\n\s*"
    r"|\r?\n[ \t]*(?=(?:[-*+•#>|]|\d{1,3}[.)])\s)"
)
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|cf|vs|al|Dr|Mr|Mrs|Ms|Prof|St|Fig|Figs|No|approx|resp|ca|Eq)"
    r"|(?:^|\s)[A-Z])\.$"
)
_WORD = re.compile(r"\w")
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character ``(start, end)`` of each sentence of ``text``: sentences longer than a
    passage cut at words, spans without a letter or digit left out."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BREAK.finditer(text):
        before = text[max(0, match.start() - 12) : match.start()]
        if _ABBREVIATION.search(before) and not _BLANK_LINE.search(match.group()):
            continue
        spans.extend(_cut(text, start, match.start()))
        start = match.end()
    spans.extend(_cut(text, start, len(text)))
    return [(a, b) for a, b in spans if _WORD.search(text, a, b)]


def _cut(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``text[start:end]`` stripped, in pieces of at most ``MAX_CHARS`` cut at spaces."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    pieces = []
    while end - start > MAX_CHARS:
        cut = text.rfind(" ", start + MAX_CHARS // 2, start + MAX_CHARS)
        cut = cut if cut > start else start + MAX_CHARS
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


def pack(vectors: np.ndarray) -> str:
    """Sentence vectors as payload text: the sign of each dimension, one bit each."""
    import numpy as np

    return base64.b64encode(np.packbits(vectors > 0, axis=-1).tobytes()).decode("ascii")


def unpack(packed: str, dim: int) -> np.ndarray:
    """``pack``'s vectors back as rows of -1 and +1, float32."""
    import numpy as np

    bits = np.frombuffer(base64.b64decode(packed), dtype=np.uint8)
    signs = np.unpackbits(bits.reshape(-1, (dim + 7) // 8), axis=-1)[:, :dim]
    return signs.astype(np.float32) * 2.0 - 1.0


def stored_form(spans: Sequence[tuple[int, int]]) -> list[int]:
    """Spans as a chunk's payload keeps them: flat start, end pairs (``stored_spans``)."""
    return [offset for span in spans for offset in span]


@dataclass(frozen=True)
class Passage:
    text: str
    highlights: tuple[tuple[int, int], ...]
    """Spans of ``text`` that are query terms."""
    line: int | None = None
    """Where the passage is in its file (1-based line and column of its start, line of its
    end); None for records, HTML and PDF."""
    column: int | None = None
    end_line: int | None = None


Terms = Callable[[str], set[int]]
"""A text's analysed terms (hashed ids), as BM25 sees them."""


def choose(
    text: str,
    spans: Sequence[tuple[int, int]],
    *,
    scores: Sequence[float] | None = None,
    query_terms: set[int] | None = None,
    terms: Terms | None = None,
) -> tuple[int, int]:
    """The ``(start, end)`` in ``text`` of the best run of one to ``MAX_SENTENCES``
    sentences: the best sentence by ``scores`` (cosine to the query) plus ``TERM_WEIGHT``
    times the share of ``query_terms`` it holds, then its better neighbour while the run
    fits in ``MAX_CHARS``."""
    if not spans:
        return (0, min(len(text), MAX_CHARS))
    fused = [float(s) for s in scores] if scores is not None else [0.0] * len(spans)
    if query_terms and terms is not None:
        for i, (a, b) in enumerate(spans):
            fused[i] += TERM_WEIGHT * len(query_terms & terms(text[a:b])) / len(query_terms)
    best = max(range(len(spans)), key=lambda i: (fused[i], -i))
    first = last = best
    while last - first + 1 < MAX_SENTENCES:
        options = [i for i in (first - 1, last + 1) if 0 <= i < len(spans)]
        options = [
            i for i in options if spans[max(i, last)][1] - spans[min(i, first)][0] <= MAX_CHARS
        ]
        if not options:
            break
        pick = max(options, key=lambda i: fused[i])
        first, last = min(first, pick), max(last, pick)
    return spans[first][0], spans[last][1]


def highlights(text: str, query_terms: set[int], terms: Terms) -> tuple[tuple[int, int], ...]:
    """The spans of the words of ``text`` whose analysed term is one of ``query_terms``."""
    if not query_terms:
        return ()
    return tuple(
        (m.start(), m.end()) for m in re.finditer(r"\w+", text) if terms(m.group()) & query_terms
    )


def sentence_scores(payload: dict[str, Any], query: Any, dim: int) -> list[float] | None:
    """The cosine of each stored sentence vector of a chunk to the query vector; None where
    the chunk has none."""
    packed = payload.get("sentence_vectors")
    if not packed or query is None:
        return None
    import numpy as np

    signs = unpack(str(packed), dim)
    q = np.asarray(query, dtype=np.float32)
    return [float(x) for x in signs @ q / (np.sqrt(dim) * (np.linalg.norm(q) or 1.0))]


def stored_spans(payload: dict[str, Any]) -> list[tuple[int, int]] | None:
    """A chunk's sentence spans from its payload; None where it keeps none."""
    flat = payload.get("sentences")
    if flat is None:
        return None
    return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]


Neighbour = Callable[[int], "dict[str, Any] | None"]
"""The payload of the chunk of the same document at an index (None if there is none)."""


def passage_of(
    payload: dict[str, Any],
    *,
    query: Any = None,
    dim: int = 0,
    query_terms: set[int] | None = None,
    terms: Terms | None = None,
    by_terms: bool = True,
    neighbour: Neighbour | None = None,
) -> Passage:
    """The passage of a hit's best chunk (its ``payload``), its ``query_terms`` highlighted;
    chosen by them too with ``by_terms`` (the modes that rank by terms). A sentence the chunk
    cuts at either end is completed from the ``neighbour`` chunk when the passage fits."""
    text = str(payload.get("text", ""))
    spans = stored_spans(payload)
    if spans is None:
        spans = sentence_spans(text)
    scores = sentence_scores(payload, query, dim)
    if scores is not None and len(scores) != len(spans):
        scores = None
    choosing = query_terms if by_terms else None
    start, end = choose(text, spans, scores=scores, query_terms=choosing, terms=terms)
    base = text
    offset = 0  # where ``text`` starts in ``base``
    line, column = payload.get("line"), payload.get("column")
    chunk, n_chunks = int(payload.get("chunk", 0)), int(payload.get("n_chunks", 1))
    if neighbour is not None and spans and start == spans[0][0] and chunk > 0:
        before = neighbour(chunk - 1)
        if before is not None:
            overlap = int(payload.get("start", 0)) - int(before.get("start", 0))
            lead = str(before.get("text", ""))[:overlap]
            joined = lead + text
            whole = _sentence_around(joined, len(lead) + start)[0]
            if whole is not None and len(lead) + end - whole <= MAX_CHARS:
                base, offset = joined, len(lead)
                line, column = before.get("line"), before.get("column")
                start = whole - len(lead)
    if neighbour is not None and spans and end == spans[-1][1] and chunk < n_chunks - 1:
        after = neighbour(chunk + 1)
        if after is not None:
            overlap = int(payload.get("end", 0)) - int(after.get("start", 0))
            tail = str(after.get("text", ""))[overlap:]
            joined = base + tail
            whole_end = _sentence_around(joined, offset + end - 1)[1]
            if whole_end is not None and whole_end - (offset + start) <= MAX_CHARS:
                base = joined
                end = whole_end - offset
    shown = base[offset + start : offset + end]
    place = None
    if line is not None and column is not None:
        from twinsearch.documents import Lines

        at = Lines(base).place(offset + start, offset + end)
        first_column = at.column + (int(column) - 1 if at.line == 1 else 0)
        place = (int(line) + at.line - 1, first_column, int(line) + at.end_line - 1)
    marks = highlights(shown, query_terms, terms) if query_terms and terms else ()
    return Passage(shown, marks, *(place or (None, None, None)))


def _sentence_around(text: str, offset: int) -> tuple[int | None, int | None]:
    """The start and end of the sentence of ``text`` that holds ``offset``."""
    for a, b in sentence_spans(text):
        if a <= offset < b:
            return a, b
    return None, None
