"""Split documents into overlapping windows of the encoder's own tokens.

Nothing is truncated: every token of a document lands in at least one chunk, and
consecutive chunks share ``overlap`` tokens so a passage cut at a boundary is whole in one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from twinsearch.encoders import Tokenizer
from twinsearch.errors import ConfigError
from twinsearch.types import Chunk, Document

# A title heads every chunk so that later chunks keep their context; it may not eat the window.
MAX_TITLE_TOKENS = 32


@dataclass(frozen=True)
class ChunkSettings:
    window: int
    """Tokens of document text per chunk, at most the encoder's window."""
    overlap: int

    def __post_init__(self) -> None:
        if self.window < 8:
            raise ConfigError(f"chunk size {self.window} is too small: use at least 8 tokens")
        if not 0 <= self.overlap < self.window // 2 + 1:
            raise ConfigError(
                f"chunk overlap {self.overlap} must be between 0 and half the chunk size "
                f"({self.window // 2})"
            )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def embedding_input(doc: Document, chunk: Chunk) -> str:
    """The encoder's input for a chunk: headed by the document title, unless it opens with it."""
    head = doc.title.strip()
    first_line = chunk.text.lstrip().split("\n", 1)[0]
    if not head or head in first_line:
        return chunk.text
    return f"{head}\n{chunk.text}"


def chunk_document(doc: Document, tokenizer: Tokenizer, settings: ChunkSettings) -> Iterator[Chunk]:
    text = doc.text
    spans = tokenizer.token_spans(text)
    if not spans:
        return
    head = doc.title.strip()
    head_tokens = min(len(tokenizer.token_spans(head)), MAX_TITLE_TOKENS) + 1 if head else 0
    window = max(settings.window - head_tokens, 8)
    overlap = min(settings.overlap, window // 2)
    step = window - overlap
    index = 0
    first = 0
    while True:
        last = min(first + window, len(spans))
        start, end = spans[first][0], spans[last - 1][1]
        yield Chunk(doc.doc_id, index, text[start:end], start, end)
        if last == len(spans):
            return
        index += 1
        first += step
