"""The delivery engine: `Consumer` leases messages in batches, keeps a bounded
window of attempts in flight on one asyncio loop, and settles in batches.

- `decisions`      pure functions: uuids, bodies, follow-ups, retry checks, settlements
- `handling`       one message to its settlement (decode, fan out, attempt)
- `settle`         settlements to the queue and the store, many per transaction
- `subscriptions`  the short-lived subscription cache
- `consumer`       the loop: lease, window, settle, stop
- `flight`         what one consumer has under way, and what finished
- `lanes`          one lane per subscription: its in-flight limit, and who waits for a slot
- `pump`           kept deliveries taken back from the store into lanes with room
- `options`        how a consumer runs (`ConsumerOptions`), checked once when built
- `retrying`       queue and store calls tried again in place through a short database outage
- `reconnect`      consumers run again through a longer outage of the PostgreSQL store
"""

from .consumer import Aborted, Consumer
from .decisions import delivery_uuid, encode_payload, serialize_body
from .options import ConsumerOptions

__all__ = ["Consumer", "ConsumerOptions", "Aborted", "delivery_uuid", "encode_payload", "serialize_body"]
