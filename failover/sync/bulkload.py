"""Loading a full sync into emptied tables: build their indexes once, at the end.

Inserting 100 000 rows into a table keeps each of its indexes up to date row
by row, in random order for most of them; building an index over the finished
table sorts once instead. On SQLite, dropping a table's own indexes before the
load and creating them again after it halves the time of the inserts.

SQLite's schema changes are part of the transaction: if the apply fails or its
worker is killed, the rollback brings the indexes back with the old rows. Only
indexes created with CREATE INDEX are deferred (sqlite_master keeps their exact
statement); primary keys and UNIQUE constraints are kept, so conflicts are
still caught as the rows go in. Other databases load as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection
from django.db.models import Model


@contextlib.contextmanager
def indexes_built_afterwards(models: list[type[Model]]) -> Iterator[None]:
    """Within a transaction: drop the models' own indexes, recreate them on success."""
    if not connection.in_atomic_block:
        raise RuntimeError("Indexes are dropped only inside the transaction that loads rows.")
    if connection.vendor != "sqlite":
        yield
        return
    statements: list[str] = []
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL",
                [model._meta.db_table],
            )
            for name, statement in cursor.fetchall():
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
                statements.append(statement)
    yield
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
