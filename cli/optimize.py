"""`twinsearch optimize [NAME]`"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from twinsearch.cli.common import (
    DataDir,
    JsonOut,
    QdrantUrl,
    collection_argument,
    counted,
    err,
    errors_to_exit,
    settings_from,
)
from twinsearch.filters import index_fields
from twinsearch.session import open_client

QUANTIZE_FROM = 500_000
"""Collections this large are told of --quantize (at a million chunks it took warm searches
from 17.6 to 12.9 ms and serving memory from 2.4 to 1.6 GB)."""
Name = Annotated[str | None, collection_argument("to optimize")]
MergedMb = Annotated[
    int | None,
    typer.Option(
        "--segment-mb",
        min=1,
        help="Largest merged segment, in MB of vectors [default: 400, about 260k chunks of a "
        "384-dimensional model]",
        show_default=False,
    ),
]
Fields = Annotated[
    list[str] | None,
    typer.Option(
        "--field",
        metavar="NAME",
        help="Also index this user field (a JSONL key or CSV column; repeat for several), so "
        "that `--where NAME...` filters read an index instead of every payload",
        show_default=False,
    ),
]

Quantize = Annotated[
    bool,
    typer.Option(
        "--quantize",
        help="Also keep int8 copies of the vectors, which searches walk the graph on before "
        "rescoring on the originals: at a million chunks, warm searches a quarter faster and "
        "half the memory, the same top-10 (see README, Scaling). Stays on for later writes",
    ),
]


@errors_to_exit
def optimize(
    name: Name = None,
    segment_mb: MergedMb = None,
    field: Fields = None,
    quantize: Quantize = False,
    json_out: JsonOut = False,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Merge a collection's segments into fewer, larger ones: searches, which visit every
    segment, get faster (at a million chunks, 25 segments become 4).

    Indexing seals a segment every 64 MB of vectors (about 42k chunks) to keep its own memory
    bounded; run this after indexing a large collection. The merge takes minutes and more
    memory than indexing; every point stays searchable throughout, and one killed half-way
    leaves the collection as it was. A Qdrant server merges on its own.

    At a million chunks and more, add --quantize: searches then read int8 copies of the
    vectors, a quarter of their size, and rescore on the originals.
    """
    settings = settings_from(collection=name, data_dir=data_dir, qdrant_url=qdrant_url)
    with open_client(settings) as client:
        store = client.collection(settings.collection)
        store.require()
        started = time.perf_counter()
        indexed = index_fields(store, field or [])
        before, after = store.optimize(segment_mb, quantize=quantize)
        quantized = store.quantized()
        seconds = time.perf_counter() - started
        large = not quantized and store.count() >= QUANTIZE_FROM
    if json_out:
        summary = {"collection": store.name, "segments_before": before, "segments_after": after}
        summary["quantized"] = quantized
        print(json.dumps({**summary, "indexed_fields": indexed, "seconds": round(seconds, 1)}))
        return
    for name_, kind in indexed.items():
        err.print(f"indexed field {name_!r} as {kind}", markup=False)
    quantized_ = ", int8-quantized," if quantize else ""
    if settings.qdrant_url:
        background = " (and quantizes them in the background)" if quantize else ""
        said = f"{counted(after, 'segment')}; a Qdrant server merges them itself{background}"
    elif after == before and not quantize:
        said = f"{counted(after, 'segment')}, nothing to merge"
    elif after == before:
        said = f"{counted(after, 'segment')} int8-quantized in {seconds:.0f} s"
    else:
        said = f"{counted(before, 'segment')} merged into {after}{quantized_} in {seconds:.0f} s"
    err.print(f"{store.name}: {said}", markup=False)
    if large:
        err.print(
            f"hint: at {QUANTIZE_FROM:,} chunks and more, `twinsearch optimize {store.name} "
            "--quantize` makes warm searches faster and serving memory smaller",
            markup=False,
        )
