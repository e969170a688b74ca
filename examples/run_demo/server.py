"""A tiny web server to try `relive run` on: state in memory, a port held open.

    cd examples/run_demo
    relive run --restart-on '*.toml' server.py

Then, while it runs (and `curl http://127.0.0.1:8765/` in another terminal):
- edit handlers.py: the next request gets the new text and the hit counter carries on
  (applied in place: same process, same pid);
- edit settings.toml: relive restarts the server (a new pid), once the old one has let go
  of the port;
- edit this file: a restart too (it is the running script);
- Ctrl-C: the server and relive end together.
"""

import os
import tomllib
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import handlers

SETTINGS = tomllib.loads(Path(__file__).with_name("settings.toml").read_text())
hits = 0  # kept across in-place edits, reset by a restart


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        global hits
        hits += 1
        body = handlers.respond(self.path, hits, SETTINGS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would drown relive's own lines


server = HTTPServer(("127.0.0.1", SETTINGS["port"]), Handler)
print(f"serving on http://127.0.0.1:{SETTINGS['port']}/ (pid {os.getpid()})", flush=True)
server.serve_forever()
