"""BM25 term vectors for hybrid search, computed in-process by Qdrant Edge's BM25 embedder.

Documents get saturated term frequencies (``k``, ``b``, ``avg_len``); queries get weight 1
per term; the collection applies IDF at search time (Qdrant's IDF modifier), so the scores
are BM25 without a separate inverted index. The same analyzer (lower-casing, NLTK's 179
English stopwords, Snowball stemming) serves indexing and querying, offline.

``avg_len`` is baked into every stored document weight, so it is the one statistic that
does not follow the collection by itself: a collection counts its chunks and their terms
(``Bm25Stats``) and its weights are rewritten when the mean drifts (``DRIFT_TOLERANCE``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import qdrant_edge as qe

from twinsearch.nouns import SparseVector


@dataclass(frozen=True)
class Bm25Settings:
    # Anserini/Pyserini's defaults for BM25 on passages and abstracts.
    k: float = 0.9
    b: float = 0.4
    avg_len: float = 256.0
    """Mean analyzed length of a chunk, in terms, as baked into the stored weights."""
    language: str = "english"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bm25Settings:
        return cls(**{k: data[k] for k in ("k", "b", "avg_len", "language") if k in data})


DRIFT_TOLERANCE = 0.10
"""How far the baked ``avg_len`` may stray from the collection's true mean chunk length
(relative) before the stored weights are rewritten. Measured on SciFact test and
nfcorpus-dev dev with chunked BM25: an ``avg_len`` off by 5-10% moved nDCG@10 by at most
0.002, off by a factor of 2 by at most 0.006."""


@dataclass(frozen=True)
class Bm25Stats:
    """A collection's chunks with BM25 vectors and their analyzed terms, in total."""

    chunks: int = 0
    terms: int = 0

    @property
    def mean(self) -> float | None:
        return self.terms / self.chunks if self.chunks > 0 else None

    def plus(self, chunks: int, terms: int) -> Bm25Stats:
        return Bm25Stats(max(self.chunks + chunks, 0), max(self.terms + terms, 0))

    def drift(self, avg_len: float) -> float:
        """Relative distance of ``avg_len`` from the true mean (0 for an empty collection)."""
        mean = self.mean
        return abs(avg_len / mean - 1.0) if mean else 0.0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Bm25Stats | None:
        return cls(int(data["chunks"]), int(data["terms"])) if data else None


class Bm25:
    """Document weights are computed here from the analyzer's term counts (Qdrant Edge's
    formula, checked equal to 1e-7), so that each chunk's length is known and stored."""

    def __init__(self, settings: Bm25Settings = Bm25Settings()) -> None:
        self.settings = settings
        self._model = qe.Bm25(
            qe.Bm25Config(
                k=settings.k, b=settings.b, avg_len=settings.avg_len, language=settings.language
            )
        )
        # With k = 1 and b = 0 a term's weight is 2 tf / (tf + 1), from which tf is exact.
        self._counter = qe.Bm25(qe.Bm25Config(k=1.0, b=0.0, language=settings.language))

    def with_avg_len(self, avg_len: float) -> Bm25:
        return Bm25(replace(self.settings, avg_len=avg_len))

    @classmethod
    def recorded(cls, metadata: Mapping[str, Any]) -> Bm25 | None:
        """The BM25 model a collection's metadata records; None for a collection without
        BM25 vectors (made before they existed)."""
        settings = metadata.get("bm25")
        return cls(Bm25Settings.from_dict(settings)) if settings else None

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return [vector for vector, _ in self.encode_with_lengths(texts)]

    def encode_with_lengths(self, texts: Sequence[str]) -> list[tuple[SparseVector, int]]:
        """Each text's weights and its analyzed length in terms."""
        out = []
        for text in texts:
            counted = self._counter.embed_document(text)
            counts = [round(w / (2.0 - w)) for w in counted.values]
            length = sum(counts)
            out.append((self.weigh(list(counted.indices), counts, length), length))
        return out

    def weigh(self, indices: list[int], counts: Sequence[float], length: int) -> SparseVector:
        k, b = self.settings.k, self.settings.b
        norm = k * (1.0 - b + b * length / self.settings.avg_len)
        return SparseVector(indices, [tf * (k + 1.0) / (tf + norm) for tf in counts])

    def counts(self, vector: SparseVector, length: int) -> list[int]:
        """The term counts behind weights this model computed for a text of ``length``."""
        k, b = self.settings.k, self.settings.b
        norm = k * (1.0 - b + b * length / self.settings.avg_len)
        return [max(round(w * norm / (k + 1.0 - w)), 1) for w in vector.values]

    def length_of(self, vector: SparseVector) -> int:
        """The analyzed length of the text behind weights this model computed, recovered
        from the weights alone: with S = sum w / (k + 1 - w), length = S * norm and
        norm = k (1 - b) / (1 - k b S / avg_len)."""
        k, b = self.settings.k, self.settings.b
        s = sum(w / (k + 1.0 - w) for w in vector.values)
        denominator = 1.0 - k * b * s / self.settings.avg_len
        if s == 0.0 or denominator <= 0.0:
            return 0 if s == 0.0 else len(vector.values)
        return round(s * k * (1.0 - b) / denominator)

    def reweighed(self, vector: SparseVector, length: int, baked_by: Bm25) -> SparseVector:
        """Weights as this model gives them, from weights ``baked_by`` gave a text."""
        return self.weigh(list(vector.indices), baked_by.counts(vector, length), length)

    def encode_query(self, text: str) -> SparseVector:
        return _sparse_vector(self._model.embed_query(text))


def _sparse_vector(vector: Any) -> SparseVector:
    return SparseVector(list(vector.indices), list(vector.values))


def mean_analyzed_length(texts: Iterable[str], language: str = "english") -> float:
    """Mean number of analyzed terms per text, as BM25's ``avg_len`` wants it."""
    counter = Bm25(Bm25Settings(language=language))
    lengths = [length for _, length in counter.encode_with_lengths(list(texts))]
    return sum(lengths) / len(lengths) if lengths else Bm25Settings.avg_len
