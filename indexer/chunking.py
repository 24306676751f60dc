"""Split documents into overlapping windows of the encoder's own tokens.

Nothing is truncated: every token of a document lands in at least one chunk, and
consecutive chunks share ``overlap`` tokens so a passage cut at a boundary is whole in one.
Each chunk's encoder input is headed by the document's title, so later chunks keep their
context. ``truncate`` instead gives one chunk per document, title and text joined by a space
and cut by the model at its maximum length: how BEIR results are published.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from twinsearch.encoders import Tokenizer
from twinsearch.errors import ConfigError
from twinsearch.nouns import Chunk, Document

# A title heads every chunk; it may not eat the window.
MAX_TITLE_TOKENS = 32


@dataclass(frozen=True)
class ChunkSettings:
    window: int
    """Tokens of document text per chunk, at most the encoder's window."""
    overlap: int
    truncate: bool = False

    def __post_init__(self) -> None:
        if self.window < 8:
            raise ConfigError(f"--chunk-size {self.window} is too small: use at least 8 tokens")
        if not 0 <= self.overlap <= self.window // 2:
            raise ConfigError(
                f"--chunk-overlap {self.overlap} must be between 0 and half the chunk size "
                f"({self.window // 2})"
            )

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)

    @classmethod
    def for_model(cls, size: int | None, overlap: int, window: int) -> ChunkSettings:
        """``--chunk-size`` (None: the model's whole window) and ``--chunk-overlap`` for a
        model of ``window`` tokens; refused, never cut, if they do not fit it."""
        if size is not None and size > window:
            raise ConfigError(
                f"--chunk-size {size} is more than the model's window of {window} tokens; "
                f"use at most {window}, or leave it out to fill the window"
            )
        return cls(size or window, overlap)

    @classmethod
    def check_flags(cls, size: int | None, overlap: int) -> None:
        """What can be checked of the two before the model is known (a dry run loads none)."""
        cls(size if size is not None else max(8, 2 * overlap), overlap)


def _headed(title: str, text: str) -> str:
    first_line = text.lstrip().split("\n", 1)[0]
    return text if not title or title in first_line else f"{title}\n{text}"


def chunk_document(doc: Document, tokenizer: Tokenizer, settings: ChunkSettings) -> Iterator[Chunk]:
    text = doc.text
    title = doc.title.strip()
    spans = tokenizer.token_spans(text)
    if not spans:
        return
    if settings.truncate:
        end = spans[min(settings.window, len(spans)) - 1][1]
        joined = f"{title} {text}" if title and title != text else text
        yield Chunk(doc.doc_id, 0, text[spans[0][0] : end], spans[0][0], end, joined)
        return
    head_tokens = min(len(tokenizer.token_spans(title)), MAX_TITLE_TOKENS) + 1 if title else 0
    window = max(settings.window - head_tokens, 8)
    overlap = min(settings.overlap, window // 2)
    step = window - overlap
    index = 0
    first = 0
    while True:
        last = min(first + window, len(spans))
        start, end = spans[first][0], spans[last - 1][1]
        piece = text[start:end]
        yield Chunk(doc.doc_id, index, piece, start, end, _headed(title, piece))
        if last == len(spans):
            return
        index += 1
        first += step
