"""``--engine dask``: the streamed fit with the partitions on a Dask cluster.

dask.dataframe.read_csv splits the CSV into partitions of ``blocksize`` bytes on the workers. The
same per-chunk functions as :mod:`mlefit.stream` run there: the first pass summarises each
partition (levels, missing values, bad values with their data row), the client combines the
summaries and fixes the encoding, every partition is encoded once and kept in the workers' memory
(``persist``), and each evaluation of the objective maps :func:`mlefit.stream.block_sums` over the
partitions and adds the results on the client, where Newton's method runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError, UsageError
from .families.base import Family

#: Bytes of CSV per partition when --chunk-rows is not given.
DEFAULT_BLOCKSIZE = 64 << 20


def _require_dask():
    try:
        import dask.dataframe as dd
        import distributed
    except ImportError:
        raise UsageError(
            "--engine dask needs the dask and distributed packages, which are not installed.",
            "Install them with: pip install 'mlefit[dask]'.",
        ) from None
    return dd, distributed


class DaskParts:
    """Encoded partitions ``(X, y, w)`` held on the workers; sums come back to the client."""

    def __init__(self, client, parts: list, n_obs: int, n_features: int, weighted: bool):
        self.client, self.parts = client, parts
        self.n_obs, self.n_features, self.weighted = n_obs, n_features, weighted

    def map_sum(self, fn):
        futures = self.client.map(_apply, [fn] * len(self.parts), self.parts, pure=False)
        total = None
        for value in self.client.gather(futures):
            if value is not None:
                total = value if total is None else total + value
        return total

    def target_chunks(self):
        """``(y, w)`` of each partition in row order, brought to the client one at a time (for
        :func:`mlefit.fingerprint.rows_fingerprint`)."""
        for future in self.client.map(_targets, self.parts, pure=False):
            yield future.result()

    def all_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Every partition's rows, brought to the client (for the exact separation check)."""
        parts = [part for part in self.client.gather(self.parts) if len(part[1])]
        X = np.concatenate([part[0] for part in parts])
        y = np.concatenate([part[1] for part in parts])
        w = np.concatenate([part[2] for part in parts]) if self.weighted else None
        return X, y, w

    def check_rank(self, names, intercept: bool) -> None:
        """The Gram matrix summed over the partitions; a rank defect names the first dependent column."""
        from . import checks


        p = self.n_features
        sums = self.map_sum(_weighted_gram)
        gram = sums[: p * p].reshape(p, p)
        # checks.check_rank on the p x p Cholesky factor of the Gram matrix: R'R = X'WX, so the
        # columns of R have the same linear dependencies as those of the design.
        try:
            R = np.linalg.cholesky(gram).T
        except np.linalg.LinAlgError:
            import scipy.linalg

            R = scipy.linalg.sqrtm(gram).real
        checks.check_rank(R, names, intercept=intercept)


def _apply(fn, part):
    X, y, w = part
    if not len(y):
        return None
    return fn(X, y, w)


def _targets(part):
    return part[1], part[2]


def _weighted_gram(X, y, w):
    Xw = X if w is None else X * w[:, None]
    return (Xw.T @ X).ravel()


def _client(scheduler: str | None):
    _, distributed = _require_dask()
    if scheduler is None or scheduler == "local":
        # worker processes on loopback; the HTTP endpoints on a free loopback port (the default,
        # 8787 on every interface, would clash with other clusters and be reachable from outside)
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=40,
        )
        return distributed.Client(cluster), cluster
    if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise UsageError(f"--scheduler must be tcp://HOST:PORT or local; got '{scheduler}'.")
    try:
        return distributed.Client(scheduler, timeout="10s"), None
    except OSError as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({exc}).") from None


def fit_dask(
    path, fam: Family, *, scheduler=None, client=None, target=None, features=None, intercept=True,
    weights=None, formula=None, dropna=False, l2=None, cov="model", method="newton", gradient="analytic",
    tol, max_iter, chunk_rows=None, blocksize=None, extras=None,
):
    """Fit a CSV on a Dask cluster (``scheduler``: ``tcp://HOST:PORT`` or ``local``), or with ``client``."""
    dd, _ = _require_dask()
    if formula is not None:
        raise UsageError("--formula is not supported with --engine dask.")
    path = Path(path)
    if not path.exists():
        raise DataError(f"file '{path}' not found.")
    cluster = None
    if client is None:
        client, cluster = _client(scheduler)
        own = True
    else:
        own = False
    try:
        sd = load_dask(
            client, dd, path, fam, target=target, features=features, intercept=intercept,
            weights=weights, dropna=dropna, blocksize=blocksize or _blocksize(path, chunk_rows),
        )
        from .stream import fit_source

        return fit_source(
            sd, fam, l2=l2, cov=cov, method=method, gradient=gradient, tol=tol, max_iter=max_iter, extras=extras,
        )
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()


def _blocksize(path: Path, chunk_rows: int | None) -> int:
    """Partition size in bytes: about ``chunk_rows`` rows (from the first lines' length)."""
    if chunk_rows is None:
        return DEFAULT_BLOCKSIZE
    with open(path, "rb") as f:
        f.readline()
        head = f.read(1 << 16)
    lines = max(head.count(b"\n"), 1)
    return max(1024, int(chunk_rows * len(head) / lines))


def load_dask(client, dd, path, fam, *, target, features, intercept, weights, dropna, blocksize):
    from dask import delayed

    from . import stream

    import pandas as pd

    try:
        ddf = dd.read_csv(str(path), blocksize=blocksize, dtype=object)
    except (pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(f"'{path}' is not a readable CSV file ({str(exc).splitlines()[0]}).") from None
    columns = [str(c) for c in ddf.columns]
    target, wanted, used = stream._header(columns, target, features, intercept, weights)
    # dtype=object: every partition as text, parsed the way pandas parses a whole file
    parts = [delayed(_parse)(p) for p in ddf.to_delayed()]
    parts = client.persist(parts)
    lengths = client.gather(client.compute([delayed(len)(p) for p in parts]))
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
    summaries = client.gather(client.compute([
        delayed(stream.summarise_chunk)(p, o, target, wanted, used) for p, o in zip(parts, offsets)
    ]))
    cols, target_values, n_dropped = stream.combine_summaries(summaries, wanted, used, dropna)
    enc, encoded = stream.make_encoding(fam, target, wanted, cols, target_values, weights, dropna, intercept)
    n_classes = len(encoded.levels) if encoded is not None else None
    encoded_parts = client.persist([delayed(stream.encode_chunk)(p, o, enc) for p, o in zip(parts, offsets)])
    del parts
    stats = client.gather(client.compute([
        delayed(lambda part: stream.chunk_stats(part[1], part[2], n_classes))(p) for p in encoded_parts
    ]))
    sw, mean, m2, counts = stream.merge_stats(stats)
    if weights and not sw > 0:
        raise DataError(f"weights column '{weights}' is zero in every row.")
    p = len(enc.design["features"])
    futures = client.compute(encoded_parts)
    n_obs = int(sum(client.gather(client.map(lambda part: len(part[1]), futures))))
    source = DaskParts(client, futures, n_obs, p, weights is not None)
    return stream.Streamed(
        source, tuple(enc.design["features"]), target, None if encoded is None else encoded.levels,
        None if encoded is None else encoded.note, intercept, weights, n_dropped, enc.design, counts,
        mean, m2 / sw if sw > 0 else 0.0, sw,
    )


def _parse(frame):
    """A partition read as text, re-read with pandas' type inference (as a whole file would be)."""
    import io

    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    buffer.seek(0)
    import pandas as pd

    return pd.read_csv(buffer)
