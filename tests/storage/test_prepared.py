"""Prepared SQLite statements (``storage.sql.prepared``) give exactly what SQLAlchemy gives:
the same stored bytes, the same rows and types, the same errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, create_engine, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, InvalidRequestError, MultipleResultsFound, NoResultFound

from backchannel.storage.sql.engine import JSON_OPTIONS
from backchannel.storage.sql.prepared import StatementCache, prepare
from backchannel.storage.sql.tables import auth_requests, clients, metadata, timeline_events

CLIENT = {
    "client_id": "c1",
    "name": "Bank",
    "token_endpoint_auth_method": "client_secret_basic",
    "secret_hash": None,
    "delivery_mode": "poll",
    "notification_endpoint": None,
    "logo_uri": None,
    "policy_uri": None,
    "jwks": None,  # nullable JSON: SQL NULL
    "jwks_uri": None,
    "user_code_parameter": True,
    "request_signing_alg": None,
    "id_token_signed_response_alg": "RS256",
    "scopes": ["openid", "profile"],
    "hint_token_issuers": [{"issuer": "https://idp.example", "jwks": {"keys": []}}],
    "authorization_details_types": [],
    "created_at": 1.5,
    "updated_at": 2.25,
    "binding_code_choice": False,
    "require_user_verification": True,
}
GET_CLIENT = select(clients).where(clients.c.client_id == bindparam("b_id"))
SET_NAME = (
    update(clients)
    .where(clients.c.client_id == bindparam("b_id"), clients.c.name == bindparam("b_old"))
    .values(name=bindparam("b_new"))
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path / 'db.sqlite'}", **JSON_OPTIONS)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        yield connection


def _driver(conn: Connection) -> sqlite3.Connection:
    driver = conn.connection.dbapi_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def _run(conn: Connection, statement: Any, params: dict[str, Any]) -> Any:
    prepared = prepare(statement, conn.dialect, tuple(params))
    assert prepared is not None
    return prepared.run(_driver(conn), params)


def _raw_client_row(conn: Connection, client_id: str) -> tuple[Any, ...]:
    sql = "SELECT * FROM clients WHERE client_id = ?"
    row: tuple[Any, ...] = _driver(conn).execute(sql, (client_id,)).fetchone()
    return row


def test_an_insert_stores_the_same_bytes_as_sqlalchemy(conn: Connection) -> None:
    conn.execute(insert(clients), CLIENT)
    _run(conn, insert(clients), {**CLIENT, "client_id": "c2"})
    by_sqlalchemy, prepared = _raw_client_row(conn, "c1"), _raw_client_row(conn, "c2")
    assert prepared[1:] == by_sqlalchemy[1:]
    assert prepared[0] == "c2"


def test_a_select_returns_the_same_mapping_and_types(conn: Connection) -> None:
    conn.execute(insert(clients), CLIENT)
    expected = dict(conn.execute(GET_CLIENT, {"b_id": "c1"}).mappings().one())
    row = _run(conn, GET_CLIENT, {"b_id": "c1"}).mappings().first()
    assert row == expected == CLIENT
    assert row["user_code_parameter"] is True and row["binding_code_choice"] is False
    assert row["jwks"] is None
    assert _run(conn, GET_CLIENT, {"b_id": "nobody"}).mappings().first() is None


def test_rows_offer_index_and_attribute_access(conn: Connection) -> None:
    conn.execute(insert(clients), CLIENT)
    query = select(clients.c.name, clients.c.scopes).where(clients.c.client_id == "c1")
    row = _run(conn, query, {}).first()
    assert (row.name, row.scopes) == ("Bank", ["openid", "profile"]) == tuple(row)
    assert row._mapping == {"name": "Bank", "scopes": ["openid", "profile"]}
    assert _run(conn, query, {}).all() == [row]


def test_scalars_and_counts(conn: Connection) -> None:
    for n in range(3):
        conn.execute(insert(clients), {**CLIENT, "client_id": f"c{n}"})
    count = select(func.count()).select_from(clients)
    assert _run(conn, count, {}).scalar_one() == 3
    assert _run(conn, count, {}).scalar() == 3
    ids = select(clients.c.client_id).order_by(clients.c.client_id)
    assert _run(conn, ids, {}).scalars() == ["c0", "c1", "c2"]
    with pytest.raises(MultipleResultsFound):
        _run(conn, ids, {}).scalar_one()
    with pytest.raises(NoResultFound):
        _run(conn, ids.where(clients.c.client_id == "nobody"), {}).scalar_one()


def test_a_conditional_update_reports_whether_it_won(conn: Connection) -> None:
    conn.execute(insert(clients), CLIENT)
    params = {"b_id": "c1", "b_old": "Bank", "b_new": "Bank 2"}
    assert _run(conn, SET_NAME, params).rowcount == 1
    assert _run(conn, SET_NAME, params).rowcount == 0  # the name is no longer "Bank"


def test_returning_rows_come_back_processed(conn: Connection) -> None:
    conn.execute(insert(clients), CLIENT)
    statement = (
        update(clients)
        .where(clients.c.client_id == bindparam("b_id"))
        .values(scopes=["openid"])
        .returning(clients.c.client_id, clients.c.scopes)
    )
    row = _run(conn, statement, {"b_id": "c1"}).mappings().first()
    assert row == {"client_id": "c1", "scopes": ["openid"]}


def test_a_duplicate_key_raises_sqlalchemys_integrity_error(conn: Connection) -> None:
    _run(conn, insert(clients), CLIENT)
    with pytest.raises(IntegrityError):
        _run(conn, insert(clients), CLIENT)


def test_a_missing_parameter_is_an_error_not_null(conn: Connection) -> None:
    with pytest.raises(InvalidRequestError, match="b_id"):
        _run(conn, GET_CLIENT, {})


def test_foreign_keys_and_autoincrement_ids_behave_as_with_sqlalchemy(conn: Connection) -> None:
    event = {"id_hash": "h", "at": 1.0, "kind": "created", "detail": {"a": 1}}
    _driver(conn).execute("PRAGMA foreign_keys=ON")
    with pytest.raises(IntegrityError):  # no such request: the foreign key holds
        _run(conn, insert(timeline_events), event)
    request = {c.name: None for c in auth_requests.c} | {
        "id_hash": "h", "client_id": "c", "subject": "s", "scope": [], "delivery_mode": "poll",
        "created_at": 1.0, "expires_at": 2.0, "interval": 5, "state": "pending",
        "acr_values": [], "amr": [],
    }  # fmt: skip
    _run(conn, insert(auth_requests), request)
    _run(conn, insert(timeline_events), event)
    _run(conn, insert(timeline_events), event)
    timeline = select(timeline_events.c.id, timeline_events.c.detail).order_by("id")
    assert [tuple(row) for row in _run(conn, timeline, {}).all()] == [(1, {"a": 1}), (2, {"a": 1})]


def test_only_statements_seen_twice_are_prepared(engine: Engine) -> None:
    cache = StatementCache(engine.dialect)
    assert cache.lookup(GET_CLIENT, ("b_id",)) is None  # first sighting: SQLAlchemy runs it
    prepared = cache.lookup(GET_CLIENT, ("b_id",))
    assert prepared is not None
    assert cache.lookup(GET_CLIENT, ("b_id",)) is prepared
    for _ in range(3):  # a statement built per call is a new object every time
        fresh = select(clients).where(clients.c.client_id == bindparam("b_id"))
        assert cache.lookup(fresh, ("b_id",)) is None


def test_statements_it_cannot_run_are_left_to_sqlalchemy(engine: Engine) -> None:
    expanding = select(clients).where(clients.c.client_id.in_(["a", "b"]))
    assert prepare(expanding, engine.dialect, ()) is None
    cache = StatementCache(engine.dialect)
    for _ in range(3):
        assert cache.lookup(expanding, ()) is None
