"""``make bench``: how fast resolvd resolves, next to uv and pip, on indexes served on loopback.

``python -m tests.bench`` (see ``__main__``) runs every requirement set through resolvd (cold,
warm and repeated), ``uv pip compile`` (cold and warm cache) and ``pip install --dry-run``, and
prints the medians as a table. The pieces:

``realindex``  the real wheels under ``/opt/pypi*`` served read-only over HTTP, as-is and with
               PEP 658 metadata sidecars extracted lazily into ``.bench/``
``synthetic``  seeded ``IndexSpec`` generators: scaling sets and a backtracking-heavy set
``sets``       the requirement sets and where each is served
``tools``      one timed run of each client, with an environment that can only reach loopback
``resolvd``    a ``resolvd serve`` process on a dedicated Redis db, and one timed job
``load``       an open-loop async load generator for ``GET /jobs/{id}``
``report``     the table, ``.bench/bench.json`` and ``.bench/bench.md``

Nothing here asserts a timing; figures are printed for people to read. Nothing here imports
``service``: resolvd is measured from the outside, over HTTP, like any other client would.
"""
