"""A scripted OpenAI-compatible server on 127.0.0.1 for failure injection in tests.

Behaviour is chosen by markers in the user message:
  RL<n>     answer 429 (Retry-After: 0) for the first n requests of that record
  E500<n>   answer 500 for the first n requests of that record
  ALWAYS500 always 500
  BAD400    answer 400 with the Authorization header echoed in the message (to test scrubbing)
  TRUNC<n>  answer 200 with a truncated JSON body for the first n requests of that record
  HTML<n>   answer 200 with an HTML page for the first n requests
  NOCHOICES<n>  answer 200 with an empty 'choices' list for the first n requests
  ERR200<n> answer 200 with an error object instead of a completion for the first n requests
  EMPTY     answer an empty completion
  COPY      answer the text after 'Reference:' in the prompt
  SLOW      sleep 0.3 s before answering
  RAHUGE<n> answer 429 with Retry-After: inf for the first n requests of that record
  RADATE<n> answer 429 with Retry-After as an HTTP date 1 s ahead for the first n requests
  LORIS     send the headers, then one byte of the body every 0.5 s, for ever (a slow-loris server)
  ENDLESS   send a chunked body that never ends, as fast as the client reads
  BIGREPLY  answer a 2 MB completion (whatever max_tokens says)
Otherwise it answers "Key facts: <first 6 words of the input>".
Requests with a wrong bearer token get 401 when the server was given a key.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, api_key: str | None = None):
        self.api_key = api_key
        self.calls: Counter = Counter()
        self.answered: Counter = Counter()  # completions sent (what a real API would bill), per prompt
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, code, body, headers=None, raw: bytes | None = None, content_type="application/json"):
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length))
                auth = self.headers.get("Authorization", "")
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                if server.api_key and auth != f"Bearer {server.api_key}":
                    return self._send(401, {"error": {"message": "invalid key", "type": "auth"}})
                content = request["messages"][-1]["content"]
                with server.lock:
                    server.calls[content] += 1
                    n = server.calls[content]
                for marker, code in (("RL", 429), ("E500", 500)):
                    match = re.search(marker + r"(\d+)", content)
                    if match and n <= int(match.group(1)):
                        return self._send(code, {"error": {"message": "try later"}}, {"Retry-After": "0"})
                match = re.search(r"RAHUGE(\d+)", content)
                if match and n <= int(match.group(1)):
                    return self._send(429, {"error": {"message": "later"}}, {"Retry-After": "inf"})
                match = re.search(r"RADATE(\d+)", content)
                if match and n <= int(match.group(1)):
                    from email.utils import formatdate

                    when = formatdate(time.time() + 1.5, usegmt=True)
                    return self._send(429, {"error": {"message": "later"}}, {"Retry-After": when})
                if "LORIS" in content or "ENDLESS" in content:
                    return self._trickle("LORIS" in content)
                fault = self._reply_fault(content, n)
                if fault is not None:
                    return fault
                if "ALWAYS500" in content:
                    return self._send(500, {"error": {"message": "down"}})
                if "BAD400" in content:
                    return self._send(400, {"error": {"message": f"bad request from {auth}"}})
                if "SLOW" in content:
                    time.sleep(0.3)
                if "EMPTY" in content:
                    text = ""
                elif "BIGREPLY" in content:
                    text = "word " * 400_000
                elif "COPY" in content:
                    text = content.split("Reference:", 1)[1].strip()
                else:
                    words = content.split("\n\n", 1)[-1].split()[:6]
                    text = "Key facts: " + " ".join(words)
                body = {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": request["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": {
                        "prompt_tokens": len(content.split()),
                        "completion_tokens": len(text.split()),
                        "total_tokens": 0,
                    },
                }
                with server.lock:
                    server.answered[content] += 1
                return self._send(200, body)

            def _trickle(self, slow: bool) -> bool:
                """Headers at once, then a body that never completes (until the client hangs up)."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if slow:
                    self.send_header("Content-Length", "1000000")
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    while True:
                        if slow:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(0.5)
                        else:
                            self.wfile.write(b"400\r\n" + b" " * 1024 + b"\r\n")
                except OSError:  # the client gave up
                    return True

            def _reply_fault(self, content: str, n: int):
                """Status 200 with a body that is not a completion (the reply-shape faults)."""
                faults = {
                    "TRUNC": lambda: self._send(200, None, raw=b'{"id": "x", "object": "chat.completion", "cho'),
                    "HTML": lambda: self._send(
                        200, None, raw=b"<html><body>Bad gateway</body></html>", content_type="text/html"
                    ),
                    "NOCHOICES": lambda: self._send(200, {"id": "x", "object": "chat.completion", "choices": []}),
                    "ERR200": lambda: self._send(200, {"error": {"message": "upstream overloaded", "code": 503}}),
                }
                for marker, send in faults.items():
                    match = re.search(marker + r"(\d+)", content)
                    if match and n <= int(match.group(1)):
                        return send() or True
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
