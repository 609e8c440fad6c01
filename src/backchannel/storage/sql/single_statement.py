"""PostgreSQL: a write and the rows that go with it as one statement.

A state change of an auth request is an UPDATE (or the INSERT of a new request) plus its
timeline event, and at times a consent or a refresh token. Inside BEGIN ... COMMIT that is
four round trips or more; as one statement whose companion rows are inserted from the
``RETURNING`` of the main write (a data-modifying ``WITH``) it is one, in autocommit, and
still all or nothing. A companion row is inserted once per row the main write returned, so
a conditional UPDATE that lost (no row) writes nothing at all, and the statement's row count
(that of its last INSERT) says whether it won. SQLite has no data-modifying ``WITH``; there
the stores keep their transactions, which cost no round trip.

Every bind is named after its table (``r_`` request, ``e_`` event, ``c_`` consent, ``t_``
refresh token) so that columns of the same name in different tables stay apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import CTE, Insert, Table, bindparam, insert, select

from backchannel.storage.sql.tables import timeline_events


def prefixed(row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``row``'s values under the bind names the builders below give its columns."""
    return {f"{prefix}{name}": value for name, value in row.items()}


def _binds(table: Table, prefix: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        column.name: bindparam(f"{prefix}{column.name}", type_=column.type)
        for column in table.c
        if column.name not in skip
    }


def insert_returning_key(table: Table, prefix: str, name: str) -> CTE:
    """``INSERT INTO table VALUES (...) RETURNING id_hash`` as the CTE ``name``."""
    statement = insert(table).values(_binds(table, prefix)).returning(table.c.id_hash)
    return statement.cte(name)


def insert_once(table: Table, source: CTE, prefix: str, name: str) -> CTE:
    """``INSERT INTO table SELECT <binds> FROM source`` as the CTE ``name``: ``table``'s
    row (all of it from the binds) is written if and only if ``source`` returned a row."""
    values = _binds(table, prefix)
    chosen = select(*values.values()).select_from(source)
    return insert(table).from_select(list(values), chosen).cte(name)


def with_event(source: CTE, *companions: CTE) -> Insert:
    """``INSERT INTO timeline_events SELECT source.id_hash, <binds> FROM source``: the event
    of the row ``source`` returned, if any (its ``id`` from the database), with
    ``companions`` written in the same statement (they are referenced by nothing, so they
    are added explicitly)."""
    values = _binds(timeline_events, "e_", skip=("id", "id_hash"))
    chosen = select(source.c.id_hash, *values.values())
    statement = insert(timeline_events).from_select(["id_hash", *values], chosen)
    for companion in companions:
        statement = statement.add_cte(companion)
    return statement
