"""The encoder seam: texts in, unit-length float32 vectors out.

Callers never branch on twin or half-twin: a twin (one set of weights) and a half-twin
(query and document routes) both answer ``encode_queries`` and ``encode_documents``.

Documents come back as a numpy array. Queries come back as ``Vectors``: a numpy array too,
from every encoder but the one a one-off search uses, which embeds its first query in a
forked child and hands it back as an ``array.array`` row, because importing numpy in the
search's process would make it slower (see ``onnx.forked``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


@runtime_checkable
class Tokenizer(Protocol):
    """Splits text the way the encoder will see it, for chunking."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character ``(start, end)`` of each token, special tokens excluded."""
        ...


class Vector(Protocol):
    """One text's vector: ``dim`` float32 values."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[float]: ...

    def tolist(self) -> list[float]:
        """The values as Python floats, for a store's query."""
        ...


class Vectors(Protocol):
    """One ``Vector`` a text, in the order of the texts."""

    def __len__(self) -> int: ...

    def __getitem__(self, row: int) -> Vector: ...


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

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        """A numpy array [len(texts), dim] of float32, but for a one-off search's first
        query (see above)."""
        ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """A numpy array [len(texts), dim] of float32."""
        ...

    def close(self) -> None:
        """Release what the encoder holds (a child process, for one); a no-op where it
        holds nothing. Called once its user is done with it."""
        ...


Spans = Sequence[tuple[int, int]]
"""Character ``(start, end)`` spans of one text: its sentences."""


def encode_with_sentences(
    encoder: Encoder,
    texts: Sequence[str],
    spans: Sequence[Spans],
    prepared: Sequence[Any] | None = None,
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Each text's vector, and a unit vector for each of its ``spans`` (its sentences): from
    the same pass where the encoder can pool its token vectors over a span
    (``encode_documents_with_sentences``), else None, which a passage then does without.
    ``prepared``: the texts as the encoder's ``tokenize_documents`` gave them."""
    method = getattr(encoder, "encode_documents_with_sentences", None)
    if method is not None and prepared is not None:
        return method(texts, spans, prepared)
    if method is not None:
        return method(texts, spans)
    return encoder.encode_documents(texts), [None] * len(texts)


def span_means(
    hidden: np.ndarray,
    offsets: Sequence[tuple[int, int]],
    spans: Sequence[tuple[int, int]],
    shift: int,
) -> np.ndarray | None:
    """The mean of the token vectors (``hidden``, a row per token as ``offsets`` places
    them) of each of ``spans`` (character offsets of the text, which the tokenized input has
    after a prompt of ``shift`` characters): a sentence's vector from the document's pass.
    A span without a token of its own gets the mean of all."""
    import numpy as np

    if not spans:
        return None
    places = np.asarray(offsets, dtype=np.int64).reshape(-1, 2) - shift
    starts, ends = places[:, 0], places[:, 1]
    real = ends > starts
    out = np.empty((len(spans), hidden.shape[-1]), dtype=np.float32)
    for row, (a, b) in enumerate(spans):
        inside = real & (starts < b) & (ends > a)
        out[row] = (
            hidden[: len(places)][inside].mean(axis=0)
            if inside.any()
            else hidden[: len(places)].mean(axis=0)
        )
    return out
