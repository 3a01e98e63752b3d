"""The engines: where the rows of a fit live, and how their sums are formed.

Every quantity a fit needs is a sum over rows (the NLL, its gradient and Hessian, the Gram matrix
of the rank check, the score outer products of the sandwich), so a fit needs its rows only through
one interface, :class:`~mlefit.engines.base.Rows`: ``map_sum(fn)`` adds ``fn(X, y, weights,
offset)`` over blocks of rows, in an order fixed by the data's shape. Three engines implement it:

* :mod:`~mlefit.engines.memory`: the rows in memory, blocks on a few threads;
* :mod:`~mlefit.engines.stream`: the rows in a binary cache on disk, read chunk by chunk;
* :mod:`~mlefit.engines.cluster`: the rows in a Dask cluster's memory, one partition per task.

:class:`~mlefit.engines.base.RowsObjective` turns any of them into the objective the optimisers
minimise, and :class:`~mlefit.engines.base.Source` carries the rows with what the readers learned
about them (names, levels, the design). ``mlefit.fit`` runs one optimiser, inference and
result-building path over every engine; no engine knows a family by name.
"""
