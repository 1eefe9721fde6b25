"""The human tables, pinned whole at 80 columns, as sqlite-utils tests its CLI.

A store is filled through its own API with fixed uuids, then its times are set
to fixed values, so every character of `ae status`, `ae logs`, `ae trace`,
`ae deadletters` and `ae replay --dry-run` is known. Swapping two columns, a
renamed header, a uuid split over two lines or a lost column all fail here.
Lines are pinned exactly, so a trailing space fails too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ae
from pinned_store import UUID_DEAD, UUID_DELIVERED, UUID_RETRYING, build

WIDTH = {"COLUMNS": "80"}


def lines(text: str) -> list[str]:
    return text.splitlines()


def shown(config: Path, *args: str) -> list[str]:
    result = ae(config, *args, env=WIDTH)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return lines(result.stdout)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("shop"))


def test_status(shop: Path) -> None:
    result = ae(shop, "status", env=WIDTH)
    assert result.stderr == "(not shown at this width: attempts, recipient, status; widen the terminal or use --json)\n"
    assert lines(result.stdout) == [
        "Queues (db)",
        "queue          messages",
        "───────────────────────",
        "trigger               0",
        "retry due             0",
        "retry delayed         0",
        "dead letters          1",
        "in flight             0",
        "",
        "Deliveries by subscription",
        "id  event                ok  failed  delivered  retrying  held  dead",
        "────────────────────────────────────────────────────────────────────",
        " 1  sales.order.created   1       0          1         0     0     0",
        " 2  sales.order.created   0       4          0         1     0     1",
    ]


def test_logs(shop: Path) -> None:
    result = ae(shop, "logs", env=WIDTH)
    # One line per row: rather than wrap the time into date and clock, it is left out at 80 columns.
    assert lines(result.stdout) == [
        "uuid                                  event                sub  ok",
        "─" * 67,
        f"{UUID_DEAD}  sales.order.created    2  no",
        f"{UUID_DEAD}  sales.order.created    2  no",
        f"{UUID_DEAD}  sales.order.created    2  no",
        f"{UUID_RETRYING}  sales.order.created    2  no",
        f"{UUID_DELIVERED}  sales.order.created    1  yes",
    ]
    assert result.stderr == (
        "(not shown at this width: log id, try, took, time (UTC), code; widen the terminal or use --json)\n"
    )


def test_trace(shop: Path) -> None:
    assert shown(shop, "trace", UUID_DEAD) == [
        "Event                sales.order.created",
        f"UUID                 {UUID_DEAD}",
        "Subscription         2  https://crm.example.com/hooks/orders",
        "Subscription status  enabled",
        "Status               Dead Lettered with 2 retries",
        "First attempt        2026-03-01 10:00:03 UTC",
        "Last attempt         2026-03-01 10:00:05 UTC",
        "",
        "Attempts",
        "#  time (UTC)               result       took  response                   log id",
        "─" * 80,
        "1  2026-03-01 10:00:03.250  failed 500  12 ms  boom                            3",
        "2  2026-03-01 10:00:04.250  failed 500  12 ms  boom                            4",
        "3  2026-03-01 10:00:05.250  failed      12 ms  ClientConnectorError: Ca…       5",
        "",
        "Payload",
        "{",
        '  "data": {',
        '    "increment_id": "CK00000101",',
        '    "grand_total": 45.5',
        "  }",
        "}",
    ]


def test_deadletters(shop: Path) -> None:
    result = ae(shop, "deadletters", env=WIDTH)
    assert lines(result.stdout) == [
        "Dead letters",
        "origin  uuid                                  what              reason",
        "─" * 80,
        f"retry   {UUID_DEAD}  subscription 2,…  failed 3 attemp…",
    ]
    assert lines(result.stderr) == [
        "(not shown at this width: parked (UTC), message id; widen the terminal or use --json)",
        "A retry: `ae replay UUID` starts it again. A trigger: `ae deadletters requeue` once its cause is fixed.",
    ]


def test_replay_dry_run(shop: Path) -> None:
    result = ae(shop, "replay", "--query", "success:false", "--dry-run", env=WIDTH)
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [
        "Would replay (dry run)",
        "uuid                                  event                sub  status   ok",
        "─" * 75,
        f"{UUID_RETRYING}  sales.order.created    2  enabled  no",
        f"{UUID_DEAD}  sales.order.created    2  enabled  no",
    ]
    assert lines(result.stderr) == [
        "(not shown at this width: last attempt (UTC); widen the terminal or use --json)",
        "2 would be replayed, 0 skipped (subscription disabled or deleted); nothing was changed",
    ]


def test_a_wide_terminal_shows_every_column(shop: Path) -> None:
    result = ae(shop, "logs", "--limit", "1", env={"COLUMNS": "120"})
    assert lines(result.stdout) == [
        "uuid                                  event                sub  ok  time (UTC)           code  try   took  "
        "log id",
        "─" * 113,
        f"{UUID_DEAD}  sales.order.created    2  no  2026-03-01 10:00:05     -    2  12 ms       5",
    ]
    assert result.stderr == ""


def test_subscriptions_list(shop: Path) -> None:
    result = ae(shop, "subscriptions", "list", env=WIDTH)
    assert lines(result.stdout) == [
        "id  event                recipient                             status",
        "─" * 70,
        " 1  sales.order.created  https://erp.example.com/hooks/orders  enabled",
        " 2  sales.order.created  https://crm.example.com/hooks/orders  enabled",
    ]
    assert result.stderr == (
        "(not shown at this width: headers, format, filter, modified (UTC), notifier, store, signature, "
        "subscribed (UTC); widen the terminal or use --json)\n"
    )
