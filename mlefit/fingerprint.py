"""A fingerprint of the rows a fit used, so that two saved fits can be checked to share their data.

``mlefit lrtest`` compares two fits only when they were made on the same observations. Nested
models differ in their feature columns, so the fingerprint covers what every fit of the same rows
shares and nothing else: the encoded target (as float64: bernoulli's 0/1, categorical's class
codes, gaussian's values), the frequency weights, and the number of rows. It is the SHA-256 of

    b"mlefit-rows-1" || n_rows (8 bytes, little-endian) || SHA-256(y) || SHA-256(w or b"")

where ``SHA-256(y)`` is over the target's float64 bytes (little-endian) in row order, so it can be
computed chunk by chunk (in memory one chunk, streamed the cache's chunks, on Dask the partitions
in order) and gives the same digest whatever the chunking.

For nested models this identifies the rows: the larger model's columns include the smaller's, so
the rows it uses (after ``--dropna``) are a subset of the smaller's, and equal counts mean equal
sets. The fingerprint says nothing of the feature values themselves.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

#: Changes whenever the bytes hashed change, so digests of different versions never match by accident.
TAG = b"mlefit-rows-1"


def rows_fingerprint(chunks: Iterable[tuple[np.ndarray, np.ndarray | None]]) -> str:
    """The hex SHA-256 fingerprint of the rows given as ``(y, weights)`` chunks in row order.

    Parameters
    ----------
    chunks : iterable of (ndarray of shape (m,), ndarray of shape (m,) or None)
        The encoded target and the frequency weights (None: unweighted) of consecutive rows.
    """
    hy, hw = hashlib.sha256(), hashlib.sha256()
    n_rows = 0
    for y, w in chunks:
        y = np.ascontiguousarray(y, dtype="<f8")
        hy.update(memoryview(y).cast("B"))
        if w is not None:
            hw.update(memoryview(np.ascontiguousarray(w, dtype="<f8")).cast("B"))
        n_rows += len(y)
    top = hashlib.sha256(TAG)
    top.update(n_rows.to_bytes(8, "little"))
    top.update(hy.digest())
    top.update(hw.digest())
    return top.hexdigest()
