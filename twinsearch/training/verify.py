"""1:1 verification: a similarity, and a same/different decision at a calibrated threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from twinsearch.training.choices import Calibrate

METADATA_FILE = "twinsearch_training.json"


def best_threshold(
    scores: np.ndarray, labels: np.ndarray, objective: Calibrate = "accuracy"
) -> tuple[float, float]:
    """(best value of ``objective``, threshold giving it): a pair is "same" when its score
    is at least the threshold, which lies halfway between two neighbouring scores."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(scores) == 0:
        raise ValueError("no scores to calibrate on")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    positives = int(y.sum())
    # Cut after each distinct score: the first i pairs are called "same".
    tp = np.concatenate([[0], np.cumsum(y)])
    called = np.arange(len(s) + 1)
    fp = called - tp
    fn = positives - tp
    tn = len(s) - positives - fp
    if objective == "accuracy":
        values = (tp + tn) / len(s)
    else:
        denominator = 2 * tp + fp + fn
        values = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    # Only cuts between different scores can be made by a threshold.
    valid = np.ones(len(s) + 1, dtype=bool)
    valid[1:-1] = s[:-1] != s[1:]
    best = int(np.flatnonzero(valid)[np.argmax(values[valid])])
    if best == 0:
        threshold = float(s[0]) + 1e-6
    elif best == len(s):
        threshold = float(s[-1])
    else:
        threshold = float((s[best - 1] + s[best]) / 2)
    return float(values[best]), threshold


def stored_threshold(model_dir: str | Path) -> float | None:
    """The threshold `twinsearch train` calibrated for a model folder, if it did."""
    path = Path(model_dir) / METADATA_FILE
    try:
        value = json.loads(path.read_text()).get("threshold")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None
