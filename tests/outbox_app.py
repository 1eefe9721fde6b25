"""A test application: it writes an order and publishes its event in one transaction.

    python outbox_app.py CONFIG DATABASE [sqlalchemy]

DATABASE is a postgresql:// URL or a SQLite file (ae's own store). Commands come
one per line on stdin; each answers one line on stdout once it is done:

- ``commit ID``:   insert order ID, publish ``{"increment_id": ID}``, commit -> ``committed ID``
- ``rollback ID``: the same, then roll back -> ``rolled back ID``
- ``hold ID``:     insert and publish, then wait without committing -> ``holding ID``
  (the test kills the process there, between the insert and the commit)
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

import asyncevents_cli as ae

EVENT = "sales.order.created"


def plain_connection(database: str) -> Any:
    if database.startswith("postgresql://"):
        import psycopg

        return psycopg.connect(database)
    return sqlite3.connect(database, timeout=30)


def run_plain(client: ae.Client, database: str) -> None:
    conn = plain_connection(database)
    mark = "%s" if database.startswith("postgresql://") else "?"
    for line in sys.stdin:
        verb, order_id = line.split()
        conn.execute(f"INSERT INTO orders (increment_id) VALUES ({mark})", (order_id,))
        client.publish(EVENT, {"increment_id": order_id}, connection=conn)
        finish(verb, order_id, conn.commit, conn.rollback)


def run_sqlalchemy(client: ae.Client, database: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    engine = create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))
    for line in sys.stdin:
        verb, order_id = line.split()
        with Session(engine) as session:
            session.execute(text("INSERT INTO orders (increment_id) VALUES (:id)"), {"id": order_id})
            client.publish(EVENT, {"increment_id": order_id}, connection=session)
            finish(verb, order_id, session.commit, session.rollback)


def finish(verb: str, order_id: str, commit: Any, rollback: Any) -> None:
    if verb == "commit":
        commit()
        answer = f"committed {order_id}"
    elif verb == "rollback":
        rollback()
        answer = f"rolled back {order_id}"
    else:
        print(f"holding {order_id}", flush=True)
        sys.stdin.read()  # until killed
        return
    print(answer, flush=True)


def main() -> None:
    config, database = sys.argv[1], sys.argv[2]
    with ae.Client(config) as client:
        if sys.argv[3:] == ["sqlalchemy"]:
            run_sqlalchemy(client, database)
        else:
            run_plain(client, database)


if __name__ == "__main__":
    main()
