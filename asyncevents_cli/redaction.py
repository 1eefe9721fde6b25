"""Credentials out of every output: the one function that makes a URL fit to show.

Every listing, JSON answer, REST answer, page, log line and error message that
includes a URL passes it through `redact_url` (tests/unit/test_secrets.py walks each
output path). Two kinds of URL, one rule:

- a recipient URL (`keep_user=False`, the default): the whole user-info goes, since
  `https://TOKEN@hooks.example/` carries a secret in the user name alone;
- a service URL of the operator's own settings (database, amqp_url,
  `keep_user=True`): the user name stays, it helps to diagnose a refused login.

Query parameters that by their names carry secrets (`password`, `token`, ...) are
shown as *** in both. The function works on the text, never on a parse of it, so a
URL too malformed to parse is redacted too.

    redact_url("https://alice:pw@hooks.example/x")                 # "https://***@hooks.example/x"
    redact_url("amqp://guest:guest@rabbit/%2F", keep_user=True)     # "amqp://guest:***@rabbit/%2F"
"""

from __future__ import annotations

import re

MASK = "***"
#: scheme://user-info@ : the user-info runs to the last @ before the path, query or fragment
USERINFO = re.compile(r"^([^/?#]*?://)([^/?#]*)@")
SECRET_PARAMETER = re.compile(
    r"([?&;](?:password|passwd|pwd|secret|token|access_token|api_key|apikey)=)[^&;#]*", re.IGNORECASE
)


def _userinfo(match: re.Match[str], keep_user: bool) -> str:
    scheme, userinfo = match.group(1), match.group(2)
    if keep_user:
        user, colon, _password = userinfo.partition(":")
        return f"{scheme}{user}:{MASK}@" if colon else match.group(0)
    return f"{scheme}{MASK}@"


def redact_url(url: str, keep_user: bool = False) -> str:
    """`url` with its credentials shown as ***: see the module's docstring."""
    if not url:
        return url
    shown = USERINFO.sub(lambda match: _userinfo(match, keep_user), url, count=1)
    return SECRET_PARAMETER.sub(rf"\1{MASK}", shown)


__all__ = ["MASK", "redact_url"]
