"""`ae serve`: the module's REST subscription API and the admin pages, over ASGI.

The only package that imports the web framework (FastAPI on Starlette, served by
uvicorn). The CLI imports it inside the `ae serve` command, never at start-up.

    app.py      the application factory: routers, error shapes, sessions
    api.py      /rest/V1/...: the module's routes and body shapes, plus publish
    pages.py    /login, /subscriptions, /logs, /trace/{uuid}: server-rendered HTML
    auth.py     Bearer tokens for the API, signed sessions and CSRF for the pages
    server.py   listening socket, uvicorn, one log line per request, clean SIGTERM
"""

from .app import create_app
from .server import run

__all__ = ["create_app", "run"]
