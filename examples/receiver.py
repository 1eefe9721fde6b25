"""A webhook receiver that verifies ae's (and the Magento module's) signature.

    python examples/receiver.py 8080 my-secret

Answers 200 to a correctly signed POST, 401 otherwise, and prints what arrived.
"""

import hashlib
import hmac
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, SECRET = int(sys.argv[1]), sys.argv[2].encode()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, self.headers.get("x-magento-signature", ""))
        print(self.headers.get("Idempotency-Key"), "verified" if ok else "BAD SIGNATURE", json.loads(body), flush=True)
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
