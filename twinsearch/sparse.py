"""BM25 term vectors for hybrid search, computed in-process by Qdrant Edge's BM25 embedder.

Documents get saturated term frequencies (``k``, ``b``, ``avg_len``); queries get weight 1
per term; the collection applies IDF at search time (Qdrant's IDF modifier), so the scores
are BM25 without a separate inverted index. The same analyzer (lower-casing, English
stopwords, Snowball stemming) serves indexing and querying, offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import qdrant_edge as qe

from twinsearch.nouns import SparseVector


@dataclass(frozen=True)
class Bm25Settings:
    # Anserini/Pyserini's defaults for BM25 on passages and abstracts.
    k: float = 0.9
    b: float = 0.4
    avg_len: float = 256.0
    """Mean analyzed length of a chunk, in terms: fixed when a collection is created."""
    language: str = "english"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bm25Settings:
        return cls(**{k: data[k] for k in ("k", "b", "avg_len", "language") if k in data})


class Bm25:
    def __init__(self, settings: Bm25Settings = Bm25Settings()) -> None:
        self.settings = settings
        self._model = qe.Bm25(
            qe.Bm25Config(
                k=settings.k, b=settings.b, avg_len=settings.avg_len, language=settings.language
            )
        )

    @classmethod
    def recorded(cls, metadata: Mapping[str, Any]) -> Bm25 | None:
        """The BM25 model a collection's metadata records; None for a collection without
        BM25 vectors (made before they existed)."""
        settings = metadata.get("bm25")
        return cls(Bm25Settings.from_dict(settings)) if settings else None

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return [_sparse_vector(self._model.embed_document(text)) for text in texts]

    def encode_query(self, text: str) -> SparseVector:
        return _sparse_vector(self._model.embed_query(text))


def _sparse_vector(vector: Any) -> SparseVector:
    return SparseVector(list(vector.indices), list(vector.values))


def mean_analyzed_length(texts: Iterable[str], language: str = "english") -> float:
    """Mean number of analyzed terms per text, as BM25's ``avg_len`` wants it.

    The embedder does not expose its token counts, but with ``b = 0`` a term's weight is
    ``tf (k + 1) / (tf + k)``, which inverts exactly to ``tf = k w / (k + 1 - w)``.
    """
    k = 1.0
    counter = qe.Bm25(qe.Bm25Config(k=k, b=0.0, language=language))
    lengths = []
    for text in texts:
        weights = counter.embed_document(text).values
        lengths.append(sum(k * w / (k + 1.0 - w) for w in weights))
    return sum(lengths) / len(lengths) if lengths else Bm25Settings.avg_len
