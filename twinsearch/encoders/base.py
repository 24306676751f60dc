"""The encoder seam: texts in, unit-length float32 vectors out.

Callers never branch on the kind of model: a twin (one set of weights) and a half-twin
(query and document routes) both answer ``encode_queries`` and ``encode_documents``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


@runtime_checkable
class Tokenizer(Protocol):
    """Splits text the way the encoder will see it, for chunking."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character ``(start, end)`` of each token, special tokens excluded."""
        ...


@runtime_checkable
class Encoder(Protocol):
    @property
    def name(self) -> str:
        """How the user named the model (a path, a hub id, or a bundled alias)."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def similarity(self) -> str: ...

    @property
    def fingerprint(self) -> str:
        """Changes whenever the vectors would: weights, prompts, routes, dimension, window."""
        ...

    @property
    def window(self) -> int:
        """How many tokens of document text one vector can take (prompt and specials excluded)."""
        ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...
