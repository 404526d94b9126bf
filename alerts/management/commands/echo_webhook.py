"""``manage.py echo_webhook [port]``: a local webhook receiver that prints each message.

For trying notifications without a real WeCom/DingTalk/Feishu/Slack robot: point a
``webhook`` channel at ``http://127.0.0.1:9100/`` and watch the messages arrive
(README, "Notifications"). It answers 200 to every POST and checks the signature when
given the channel's secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print every webhook message POSTed to http://127.0.0.1:PORT/ (default 9100)."

    def add_arguments(self, parser):
        parser.add_argument("port", nargs="?", type=int, default=9100)
        parser.add_argument("--secret", default="", help="check X-AIMonitor-Signature with it")

    def handle(self, *args, port: int, secret: str, **options):
        out = self.stdout

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signed = ""
                if secret:
                    expected = (
                        "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                    )
                    good = hmac.compare_digest(
                        expected, self.headers.get("X-AIMonitor-Signature", "")
                    )
                    signed = " signature ok" if good else " SIGNATURE WRONG"
                try:
                    data = json.loads(body)
                    event, text = data.get("event", "?"), data.get("text", body.decode())
                except ValueError:
                    event, text = "?", body.decode(errors="replace")
                out.write(
                    f"--- {event} ({self.headers.get('X-AIMonitor-Delivery')}){signed}\n{text}\n"
                )
                out.flush()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.stdout.write(f"Listening on http://127.0.0.1:{port}/ (Ctrl-C stops).")
        self.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            HTTPServer(("127.0.0.1", port), Handler).serve_forever()
