"""The export quantized to int8 for OpenVINO: NNCF's post-training quantization of the
exported graph, calibrated on chunks of the corpus being indexed, kept beside the export
(``INT8_DIR``) and used by later runs as it is. What stays in floating point runs in fp32.

int8 moves vectors further than bf16 (a least cosine of about 0.99 with fp32 on SciFact
chunks, against 0.99997), so it has a gate of its own (``encoders.fast``), and what it does
to retrieval is measured with `eval`, not by cosine.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twinsearch.encoders.onnx.layout import INT8_DIR, MODEL_FILE
from twinsearch.encoders.onnx.runtime import openvino_module, without_telemetry
from twinsearch.errors import ModelError, first_line

CALIBRATION_TEXTS = 128
"""Chunks the quantization is calibrated on, at most: the first a run encodes."""
CALIBRATION_BATCH = 8
CALIBRATION_FILE = "calibration.json"


def _nncf() -> Any:
    """NNCF, its telemetry off (see ``runtime.without_telemetry``)."""
    with without_telemetry():
        try:
            import nncf
        except ImportError:
            raise ModelError("int8 needs NNCF: pip install 'twinsearch[int8]'") from None
    return nncf


def quantize(encoder: Any, texts: Sequence[str]) -> Path:
    """The int8 model of ``encoder``'s export (an ``OnnxEncoder``), made from ``texts``
    (the first ``CALIBRATION_TEXTS`` are used) unless it is there already; its folder."""
    folder: Path = encoder.folder
    target = folder / INT8_DIR
    if (target / CALIBRATION_FILE).exists():
        return target
    if not texts:
        raise ModelError("no texts to calibrate an int8 model on")
    nncf, openvino = _nncf(), openvino_module()

    sample = list(texts[:CALIBRATION_TEXTS])
    encoded = sorted(encoder.tokenize("document", sample), key=lambda e: len(e.ids))
    batches = [
        {
            n: v
            for n, v in encoder.feeds(encoded[i : i + CALIBRATION_BATCH]).items()
            if n in encoder.config["inputs"]
        }
        for i in range(0, len(encoded), CALIBRATION_BATCH)
    ]
    staging = Path(tempfile.mkdtemp(prefix=".int8-", dir=folder))
    try:
        model = openvino.Core().read_model(str(folder / MODEL_FILE))
        nncf.set_log_level(logging.ERROR)
        # Its progress bars write to stdout, which belongs to the caller (`--json`).
        with contextlib.redirect_stdout(io.StringIO()):
            quantized = nncf.quantize(
                model,
                nncf.Dataset(batches),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(batches),
            )
        openvino.save_model(quantized, str(staging / "model.xml"))
        calibration = {"texts": len(sample), "nncf": nncf.__version__}
        (staging / CALIBRATION_FILE).write_text(json.dumps(calibration))  # written last
        if not (target / CALIBRATION_FILE).exists():  # not made meanwhile by another process
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    except ModelError:
        raise
    except Exception as exc:  # NNCF and OpenVINO raise their own types
        raise ModelError(f"int8 quantization failed: {first_line(exc)[:200]}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
