"""The query side of a sentence-transformers model as ONNX, run without torch.

Importing torch and sentence-transformers costs seconds; onnxruntime and tokenizers load in
a fraction of that, which is what makes a cold `twinsearch search` quick. The export is made
from the loaded model when a collection is indexed, and searches use it when it is there.

    layout        an export's files, and whether the one found may be used
    architecture  which models can be exported
    exporter      export: the model traced with torch, checked against it, kept
    runtime       OnnxEncoder and load: an export run on onnxruntime or OpenVINO;
                  reference: the export checked to stand in for the model on torch
    quantized     the export quantized to int8 for OpenVINO (NNCF)
    forked        ForkedQuery: a search's first query embedded in a forked child

Callers use the names in ``__all__``. A search imports this package before it forks its
query child, so only what comes before the fork is imported here; the rest on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from twinsearch.encoders.onnx.forked import ForkedQuery
from twinsearch.encoders.onnx.layout import (
    CONFIG_FILE,
    folder_for,
    intact,
    known_fingerprint,
    remember_source,
)

if TYPE_CHECKING:
    from twinsearch.encoders.onnx.exporter import export
    from twinsearch.encoders.onnx.runtime import OnnxEncoder, load, reference

__all__ = [
    "CONFIG_FILE",
    "ForkedQuery",
    "OnnxEncoder",
    "export",
    "folder_for",
    "intact",
    "known_fingerprint",
    "load",
    "reference",
    "remember_source",
]

_HOME_OF = {
    "export": "exporter",
    "OnnxEncoder": "runtime",
    "load": "runtime",
    "reference": "runtime",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOME_OF[name]}"), name)
