"""A one-off search's first query, embedded in a forked child while the parent goes on.

The parent imports nothing heavy before it forks: the sooner the child starts, the more its
work overlaps the parent's, and a fork is safe only before a library has started threads of
its own. Nor does it import numpy afterwards, which made a cold search slower (by some 30 ms
on two cores): the vector comes back as an ``array.array`` of float32, which ``Vectors``
allows (see ``encoders.base``).
"""

from __future__ import annotations

import array
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from twinsearch.encoders.onnx.layout import checked_config, folder_for

if TYPE_CHECKING:
    import numpy as np

    from twinsearch.encoders.base import Encoder, Tokenizer, Vectors


class ForkedQuery:
    """An encoder whose first query is embedded in a forked child process, which loads the
    ONNX session there while this process does something else (opens the store): on two
    cores the two start-up costs overlap instead of adding up.

    Any other text, or a child that fails, is embedded in this process by the encoder
    ``fallback`` returns (which should say why it is needed).
    """

    def __init__(
        self,
        models_dir: Path,
        fingerprint: str,
        query: str,
        fallback: Callable[[], Encoder],
        threads: int | None = None,
    ) -> None:
        config = checked_config(folder_for(models_dir, fingerprint), fingerprint)
        self.name = str(config["name"])
        self.fingerprint = str(config["fingerprint"])
        self.dim = int(config["dim"])
        self.similarity = str(config["similarity"])
        self.window = int(config["window"])
        self._query = query
        self._fallback = fallback
        self._encoder: Encoder | None = None
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: embed, hand the vector over, and leave without cleanup
            try:
                os.close(read)
                from twinsearch.encoders.onnx.runtime import load

                vector = load(models_dir, fingerprint, threads).encode_queries([query])[0]
                os.write(write, vector.astype("<f4").tobytes())
            finally:
                os._exit(0)
        os.close(write)
        self._pid: int | None = pid
        self._read = read

    def _collect(self) -> list[array.array[float]] | None:
        """The child's vector as the one row of ``Vectors``, or None if the child failed;
        the child is reaped either way."""
        data = b""
        while chunk := os.read(self._read, 65536):
            data += chunk
        os.close(self._read)
        os.waitpid(self._pid or 0, 0)
        self._pid = None
        if len(data) != self.dim * 4:
            return None
        vector = array.array("f", data)
        if sys.byteorder != "little":
            vector.byteswap()
        return [vector]

    def _here(self) -> Encoder:
        if self._encoder is None:
            self._encoder = self._fallback()
        return self._encoder

    @property
    def tokenizer(self) -> Tokenizer:
        return self._here().tokenizer

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        if self._pid is not None:
            vectors = self._collect()
            if vectors is not None and list(texts) == [self._query]:
                return vectors
        return self._here().encode_queries(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._here().encode_documents(texts)

    def close(self) -> None:
        """Reap the child if its vector was never asked for; close the fallback if made."""
        if self._pid is not None:
            self._collect()
        if self._encoder is not None:
            self._encoder.close()
