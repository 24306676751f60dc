"""One settings object, built at the edge (the CLI) and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    """Where the embedded store keeps its collections."""
    collection: str = "default"
    model: str | None = None
    """None: the model the collection was built with, or the default model for a new one."""
    qdrant_url: str | None = None
    """A Qdrant server instead of the embedded store."""
    qdrant_api_key: str | None = None
    chunk_size: int | None = None
    """Tokens per chunk; None: the model's whole window."""
    chunk_overlap: int = 32
    batch_size: int = 32
    threads: int | None = None
    """Torch threads; None: the cores that are free when the command starts."""
    device: str | None = None
