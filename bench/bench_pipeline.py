"""Throughput of the embedded pipeline: publish, then deliver to a local receiver.

    python bench/bench_pipeline.py [--events 2000] [--subscribers 2] [--runs 3] [--queue db|amqp]
                                   [--delay-ms 0]

Each run uses a fresh SQLite store in a temporary folder and a local HTTP
receiver (in its own process) that answers 200 at once; it reports events/s for `publish_batch`
(one transaction), events/s and deliveries/s for one `consume all` worker,
and the median over the runs. Figures are for comparing changes on one
machine, in one sitting: shared machines are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import multiprocessing
import multiprocessing.queues
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asyncevents_cli.publish import publish_batch
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.subscribe import subscribe


class Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    delay = 0.0  # seconds each answer takes, to stand in for a real receiver's work

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.delay:
            time.sleep(self.delay)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def serve(port_out: "multiprocessing.queues.Queue[int]", delay: float) -> None:
    Ok.delay = delay
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever(poll_interval=0.05)


def one_run(events: int, subscribers: int, queue: str, amqp_url: str | None, delay: float) -> tuple[float, float]:
    # The receiver runs in its own process, as a real one would, so it does not
    # compete with the consumer for the interpreter lock.
    ports: multiprocessing.queues.Queue[int] = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=serve, args=(ports, delay), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{ports.get(timeout=10)}/hook"
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "events.toml"
            settings = f'queue = "{queue}"\n' + (f'amqp_url = "{amqp_url}"\n' if amqp_url else "")
            config.write_text(f'[events."sales.order.created"]\n[settings]\n{settings}')
            with Runtime(config, environ={}) as rt:
                for _ in range(subscribers):
                    subscribe(rt.config, rt.store, "sales.order.created", url, secret="bench")
                items = [{"increment_id": f"CK{n:08d}", "customer_email": f"user{n}@example.com",
                          "grand_total": n % 500 + 0.5} for n in range(events)]
                started = time.perf_counter()
                publish_batch(rt.config, rt.queue, "sales.order.created", items)
                published = time.perf_counter() - started
                started = time.perf_counter()
                handled = rt.worker().run(until_empty=True)
                consumed = time.perf_counter() - started
                assert handled == events, (handled, events)
                assert rt.store.max_log_id() == events * subscribers
        return events / published, events / consumed
    finally:
        receiver.terminate()
        receiver.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--subscribers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queue", choices=("db", "amqp"), default="db")
    parser.add_argument("--amqp-url", default=None)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="how long the receiver takes to answer")
    args = parser.parse_args()
    publish_rates, consume_rates = [], []
    for n in range(args.runs):
        p, c = one_run(args.events, args.subscribers, args.queue, args.amqp_url, args.delay_ms / 1000)
        publish_rates.append(p)
        consume_rates.append(c)
        print(f"run {n + 1}: publish {p:8.0f} events/s   consume {c:7.0f} events/s "
              f"({c * args.subscribers:7.0f} deliveries/s)")
    print(f"median ({args.events} events, {args.subscribers} subscribers, receiver {args.delay_ms:g} ms, "
          f"queue={args.queue}): "
          f"publish {statistics.median(publish_rates):.0f} events/s, "
          f"consume {statistics.median(consume_rates):.0f} events/s "
          f"= {statistics.median(consume_rates) * args.subscribers:.0f} deliveries/s")


if __name__ == "__main__":
    main()
