"""`Store`: the store's tables, composed over one backend.

A reader holds it in mind as a list: one object per table, each owning its
SQL, all given the same `backend` (the connection and the transaction verbs).
Open one with `open_store` (``factory.py``), which picks the backend from the
database's name and brings the schema up to date.

    store.subscriptions   subscriptions, filtered_events      (subscriptions.py)
    store.log             delivery_log, deliveries            (delivery_log.py)
    store.lanes           pending_deliveries, endpoint_states (lanes.py)
    store.api_tokens      api_tokens                          (api_tokens.py)
    store.info            store_info, amqp_delay_queues       (store_info.py)
    store.rate_buckets    rate_buckets                        (rate_buckets.py)
    store.health          read-only queries for health        (health.py)
    store.schema          schema_migrations                   (schema.py)

Writes that must happen together, across tables, run inside
``store.transaction()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Self

from .api_tokens import ApiTokenTable
from .backend import Backend
from .delivery_log import DeliveryLogTable
from .health import HealthQueries
from .lanes import LaneTable
from .rate_buckets import RateBucketTable
from .schema import Migration, SchemaTable
from .store_info import StoreInfoTable
from .subscriptions import SubscriptionTable


class Store:
    def __init__(
        self, backend: Backend, migrations: Sequence[Migration], environ: Mapping[str, str] | None = None
    ) -> None:
        self.backend = backend
        self.schema = SchemaTable(backend, migrations)
        self.info = StoreInfoTable(backend)
        self.log = DeliveryLogTable(backend)
        self.lanes = LaneTable(backend)
        self.rate_buckets = RateBucketTable(backend)
        self.subscriptions = SubscriptionTable(backend, self.lanes, self.rate_buckets, environ)
        self.api_tokens = ApiTokenTable(backend)
        self.health = HealthQueries(backend)

    @property
    def location(self) -> str:
        """Where the store is, safe to print (no password)."""
        return self.backend.location

    @property
    def read_only(self) -> bool:
        """True when the store can be read but not written; every write says why."""
        return self.backend.read_only

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of writes, across tables; nested calls join the outer one."""
        with self.backend.transaction():
            yield

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
