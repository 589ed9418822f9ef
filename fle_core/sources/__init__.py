"""Where FLE trajectories come from. One module per kind of source.

* ``programs``: FLE's legacy ``programs`` table in SQLite or Postgres, read as
  lean Arrow batches through ADBC (``connect``, ``lean_batches``, ...);
* ``programs_schema``: the ``programs`` DDL variants seen in the wild (fixtures,
  the simulator).

Sources only read; nothing here writes the warehouse.
"""
