"""A lexical stand-in for a neural encoder: hashed bag of words, deterministic and instant.

It ships with the library so that tests (ours and users') exercise every code path without a
model; its vectors are checkable by eye (one dimension per hashed lower-cased word).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks, as BERT splits them


class WordTokenizer:
    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _TOKEN.finditer(text)]


class HashingEncoder:
    """``encode_queries`` and ``encode_documents`` are the same function: a twin by construction."""

    similarity = "cosine"

    def __init__(self, dim: int = 256, window: int = 64) -> None:
        self.dim = dim
        self.window = window
        self.name = f"hashing:{dim}"
        self.fingerprint = f"hashing-v1-{dim}-{window}"
        self.tokenizer = WordTokenizer()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        # An empty text has no direction; give it a fixed one rather than NaNs.
        out[norms[:, 0] == 0, 0] = 1.0
        norms[norms == 0] = 1.0
        return out / norms

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents_with_sentences(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """Sentences encoded on their own: as cheap as the texts."""
        sentences: list[np.ndarray | None] = [
            self._encode([text[a:b] for a, b in some]) if some else None
            for text, some in zip(texts, spans, strict=True)
        ]
        return self._encode(texts), sentences

    def close(self) -> None:
        """Nothing to release."""
