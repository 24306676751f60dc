"""The nouns: what is indexed, what is stored, what is found."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeAlias


@dataclass(frozen=True)
class Document:
    """One unit the user thinks of as a document: a file, or one record of a corpus."""

    doc_id: str
    text: str
    title: str = ""
    source: str = ""
    """The file it was read from."""
    root: str = ""
    """What was indexed to find it: the folder walked, or the file itself."""
    modified: str = ""
    """The source file's modification time, RFC 3339 in UTC."""
    fields: dict[str, Any] = field(default_factory=dict)
    """User fields: the other keys of a JSONL/JSON record, the other columns of a CSV row."""
    lines: bool = False
    """Whether ``text`` is its file's text as it stands, line for line (a text file), so
    that offsets into it are places in the file: not for HTML, PDF or records."""


@dataclass(frozen=True)
class Chunk:
    """A window of a document; ``text`` is ``Document.text[start:end]``, the snippet shown,
    and ``input`` what the encoders see (the text headed by the document's title)."""

    doc_id: str
    index: int
    text: str
    start: int
    end: int
    input: str


@dataclass(frozen=True)
class SparseVector:
    """Term weights by hashed term id, as Qdrant's sparse vectors hold them."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Point:
    """What the store holds for one chunk: its dense vector, and its BM25 terms if any."""

    id: str
    vector: Any  # float32 array-like of the collection's dimension
    payload: dict[str, Any]
    sparse: SparseVector | None = None


@dataclass(frozen=True)
class ScoredPoint:
    id: str
    score: float
    payload: dict[str, Any]
    vector: Any = None
    """The dense vector, when the search asked for it."""


@dataclass(frozen=True)
class Hit:
    """One document in a result list; its best chunk is the snippet."""

    rank: int
    doc_id: str
    score: float
    title: str
    snippet: str
    source: str
    chunk: int
    root: str = ""
    """What was indexed to find it: the folder walked, or the file named; with ``doc_id``,
    the document's identity."""
    mode: str = "dense"
    """How ``score`` was computed: dense (cosine), bm25 (BM25) or hybrid (reciprocal rank
    fusion of the two rankings, whose values only order)."""
    similarity: float | None = None
    """Cosine similarity of the best chunk to the query (dense and hybrid modes)."""
    terms: tuple[int, int] | None = None
    """(query terms in the best chunk, query terms), after stemming and stopwords (bm25 and
    hybrid modes)."""
    line: int | None = None
    """Where the passage (the best chunk, where no passage was chosen) starts in its file,
    from 1, and the line it ends on: for text files (None for records, HTML and PDF, and in
    collections indexed before lines were)."""
    column: int | None = None
    end_line: int | None = None
    passage: str = ""
    """The one to three sentences of the best chunk that best answer the query."""
    highlights: tuple[tuple[int, int], ...] = ()
    """Character spans of ``passage`` that are query terms."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "doc_id": self.doc_id,
            "score": self.score,
            "title": self.title,
            "snippet": self.snippet,
            "passage": self.passage,
            "highlights": [list(span) for span in self.highlights],
            "source": self.source,
            "root": self.root,
            "chunk": self.chunk,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "mode": self.mode,
            "similarity": self.similarity,
            "terms_matched": None if self.terms is None else self.terms[0],
            "query_terms": None if self.terms is None else self.terms[1],
        }


class SearchMode(str, Enum):
    """How documents are ranked: by the model (cosine similarity of the query's vector to
    each chunk's), by keywords (BM25 over the collection's term vectors), or by both
    rankings fused by reciprocal rank."""

    dense = "dense"
    bm25 = "bm25"
    hybrid = "hybrid"


MODES = tuple(mode.value for mode in SearchMode)
Mode: TypeAlias = str
"""A ``SearchMode`` (or its value); ``Searcher`` refuses any other."""
MAX_K = 1000
"""The most documents one search returns."""
AROUND_LINES = 20
"""Lines `get ID:LINE` shows when no count is given: the context around a hit."""
