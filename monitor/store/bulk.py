"""Many rows in one statement on SQLite: the rows travel as one JSON text parameter.

aiosqlite runs every statement in its own thread, and `executemany` steps SQLite once per row,
taking the GIL back after each step: beside a busy event loop each of those waits for the loop's
thread, and the writer fell behind (docs/performance.md). With `json_each` a batch is one step in
SQLite's C code, which runs with the GIL released throughout, and needs no chunking under
SQLite's limit on bound variables.

PostgreSQL (asyncpg, no thread of its own) keeps SQLAlchemy's `executemany`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import CursorResult, Executable, Table, TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["insert", "insert_json_rows", "json_rows", "names_insert", "names_select"]


async def insert(
    conn: AsyncConnection,
    on_sqlite: TextClause,
    elsewhere: Executable,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    **constants: Any,
) -> CursorResult[Any]:
    """Insert `rows` (values of `columns`, in order; `constants` the same in every row): on
    SQLite with `on_sqlite`, made by `insert_json_rows`, in one step; elsewhere with `elsewhere`
    through SQLAlchemy's executemany."""
    if conn.dialect.name == "sqlite":
        return await conn.execute(on_sqlite, {"rows": json_rows(rows), **constants})
    named = [dict(zip(columns, row, strict=True), **constants) for row in rows]
    return await conn.execute(elsewhere, named)


def json_rows(rows: Iterable[Any]) -> str:
    """Rows (tuples of JSON scalars, or names) as the one parameter of the statements below.
    Non-finite floats are refused (JSON has none; the callers store them as NULL)."""
    return json.dumps(list(rows), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def insert_json_rows(
    table: Table, columns: Sequence[str], *, constants: Sequence[str] = (), ignore: bool = False
) -> TextClause:
    """`INSERT [OR IGNORE] INTO table (columns..., constants...)` of the rows in `:rows`, each a
    JSON array of the columns' values in order; each constant is bound once as `:<name>`."""
    names = [_column(table, name) for name in (*columns, *constants)]
    values = [f"json_extract(value, '$[{i}]')" for i in range(len(columns))]
    values += [f":{name}" for name in constants]
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    return text(
        f"{verb} INTO {table.name} ({', '.join(names)}) SELECT {', '.join(values)} FROM json_each(:rows)"
    )


def names_insert(table: Table, column: str) -> TextClause:
    """Create the rows of the names in `:names` (a JSON array) that do not exist yet."""
    return text(
        f"INSERT OR IGNORE INTO {table.name} ({_column(table, column)}) SELECT value FROM json_each(:names)"
    )


def names_select(table: Table, column: str) -> TextClause:
    """(id, name) of the names in `:names` (a JSON array)."""
    col = _column(table, column)
    return text(f"SELECT id, {col} FROM {table.name} WHERE {col} IN (SELECT value FROM json_each(:names))")


def _column(table: Table, name: str) -> str:
    """`name`, a column of `table` (our own schema's: never a value from outside)."""
    if name not in table.c:
        raise KeyError(f"{table.name} has no column {name!r}")
    return name
