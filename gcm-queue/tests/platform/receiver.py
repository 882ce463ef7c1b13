"""A webhook receiver for gcm-queue's tests, on 127.0.0.1 (a free port, printed first).

Each delivery's signature is checked with the `standardwebhooks` package from PyPI, an
implementation nobody here wrote, against every secret given: a receiver holding either
secret of a rotation must accept. The n-th request (counted from 0, whatever its id) is
answered as the n-th word of the plan says, then `ok` once the plan is used up:

    ok    200 at once          fail  500 at once
    slow  200 after a second   hang  no answer for a minute (the sender's timeout cuts it)

Every request is logged to the log file as a JSON line when it arrives (`arrived`, with
its id, whether each signature verified, and the body) and when it is answered (`answered`,
with the status). The test reads that log: it is the receiver's side of the story.

    python receiver.py LOG PLAN SECRET [SECRET...]
"""

import http.server
import json
import sys
import threading
import time

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

log_path, plan, secrets = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
hooks = [Webhook(secret) for secret in secrets]
lock = threading.Lock()
requests = 0


def log(entry):
    with lock, open(log_path, "a", encoding="utf-8") as file:
        file.write(json.dumps(entry) + "\n")


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global requests
        with lock:
            action = plan[requests] if requests < len(plan) else "ok"
            requests += 1
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        verified = []
        for hook in hooks:
            try:
                hook.verify(body, headers)
                verified.append(True)
            except WebhookVerificationError:
                verified.append(False)
        delivery = headers.get("webhook-id")
        log({
            "event": "arrived",
            "id": delivery,
            "path": self.path,
            "action": action,
            "verified": verified,
            "body": json.loads(body),
        })
        if action == "hang":
            time.sleep(60)
        if action == "slow":
            time.sleep(1)
        status = 500 if action == "fail" or not all(verified) else 200
        try:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
        except OSError:
            return  # the sender gave up waiting
        log({"event": "answered", "id": delivery, "status": status})

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
