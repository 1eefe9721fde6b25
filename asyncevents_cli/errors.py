"""The exceptions `ae` raises, and the exit code each one maps to.

    AeError                      exit 1  operational failure
    ├── NotFound                 exit 1  unknown subscription id, uuid, ...
    ├── InputError               exit 2  bad input: arguments, data, files
    │   └── ConfigError          exit 2  malformed or invalid events.toml / AE_* settings
    ├── QueueUnavailable         exit 3  the queue backend cannot be reached
    └── DatabaseUnavailable      exit 3  the PostgreSQL store cannot be reached
        └── CommitUnknown        exit 3  lost during COMMIT, and whether it committed cannot be learnt

The core raises these and nothing else for expected failures; the CLI turns
them into one line on stderr and the exit code (see `cli/app.py`). Library
exceptions (sqlite3, psycopg, pika, aiohttp) are translated where they are caught,
`raise ... from exc`, so that under AE_DEBUG=1 the traceback shows the cause too
(`reveal_causes` shows it even where a `from None` hid it).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_QUEUE_UNAVAILABLE = 3


class AeError(Exception):
    """Base class: an expected failure with a message fit for a user."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: a next step to suggest, e.g. "run `ae subscriptions list`"
        self.hint = hint


class NotFound(AeError):
    exit_code = EXIT_FAILURE


class InputError(AeError):
    exit_code = EXIT_BAD_INPUT


class ConfigError(InputError):
    exit_code = EXIT_BAD_INPUT


class QueueUnavailable(AeError):
    exit_code = EXIT_QUEUE_UNAVAILABLE


class DatabaseUnavailable(AeError):
    exit_code = EXIT_QUEUE_UNAVAILABLE


class CommitUnknown(DatabaseUnavailable):
    """The connection was lost while COMMIT's reply was on its way, and the server
    could not be asked afterwards whether it committed: running the transaction
    again might do its work twice, so it must not be retried in place."""


def reveal_causes(exc: BaseException) -> BaseException:
    """`exc`, with every exception behind it shown when its traceback is printed, even one
    raised `from None`: under AE_DEBUG=1 the CLI and the web app show why, not only what."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__suppress_context__ = False
        link = link.__cause__ or link.__context__
    return exc
