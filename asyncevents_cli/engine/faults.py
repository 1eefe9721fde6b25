"""Which failures stop the consumer, as opposed to one message's doing.

Handling a message and settling it both ask: below them both, so neither imports the other.
"""

from __future__ import annotations

from ..database_errors import UNAVAILABLE_NOW
from ..errors import QueueUnavailable
from ..secretbox import SecretKeyError

#: Failures that are not one message's fault: they stop the consumer, and what it
#: holds comes back (lease expiry, broker requeue).
#: SecretKeyError too: a wrong key is the operator's to fix, not a reason to park every message.
INFRASTRUCTURE = (QueueUnavailable, *UNAVAILABLE_NOW, SecretKeyError)

__all__ = ["INFRASTRUCTURE"]
