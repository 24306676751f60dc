"""One settings object, built at the edge (the CLI) and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUNTIMES = ("auto", "openvino", "onnx", "torch")
"""What may run the document encoder (see ``encoders.fast``)."""
PRECISIONS = ("auto", "fp32", "bf16", "int8", "fp16")


def check_encoder_route(runtime: str, precision: str) -> None:
    """``ConfigError`` naming the choices unless both are known."""
    from twinsearch.errors import ConfigError

    for name, value, allowed in (
        ("runtime", runtime, RUNTIMES),
        ("precision", precision, PRECISIONS),
    ):
        if value not in allowed:
            raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")


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
    runtime: str = "auto"
    """What runs the document encoder: auto (the fastest that keeps the model's vectors,
    measured), openvino, onnx or torch (see ``encoders.fast``)."""
    precision: str = "auto"
    """Its precision: auto, fp32, bf16 (OpenVINO on a CPU with bf16), int8 (OpenVINO, asked
    for only) or fp16 (a GPU)."""
    segment_mb: int | None = None
    """Embedded store: vector data per segment of a new collection; None: the store's own
    (64 MB). Indexing memory is bounded by one segment; smaller segments use less of it but
    slow searches, which visit every segment (see ``stores.edge.SEGMENT_KIB``)."""
    # A Qdrant server's collections (ignored by the embedded store).
    shards: int | None = None
    """Shards of a new collection; None: 1 on one node, 2 per node on a cluster."""
    replicas: int | None = None
    """Copies of each shard; None: 1 on one node, 2 on a cluster."""
    write_consistency: int | None = None
    """Replicas that must acknowledge a write; None: 1."""
    read_consistency: str | None = None
    """Replicas a search asks: all, majority, quorum or a number; None: any one."""
    timeout: int = 30
    """Seconds to wait for the server on each request."""
