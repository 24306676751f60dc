"""The choices a training run offers, each defined here once.

The trainer takes these values and the command line offers them (typer reads a Literal as
a set of choices). Light: the command line imports it at start-up.
"""

from __future__ import annotations

from typing import Literal, get_args

Arch = Literal["twin", "half-twin"]
ArchChoice = Literal["auto", "twin", "half-twin"]
"""auto trains each of ``ARCHES`` and keeps the one best on the held-out split."""
ARCHES: tuple[Arch, ...] = get_args(Arch)
Loss = Literal["mnrl", "contrastive", "online-contrastive", "triplet"]
Precision = Literal["auto", "fp32", "bf16"]
Calibrate = Literal["accuracy", "f1"]

CALIBRATIONS: tuple[Calibrate, ...] = get_args(Calibrate)
