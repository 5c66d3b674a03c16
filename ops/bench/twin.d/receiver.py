#!/usr/bin/env python3
"""Notification receiver for ops/bench/twin: takes NGSI-LD notifications (POST), answers 204,
and keeps per-change latency (arrival − the entity's modifiedAt, i.e. the twin's commit) and the
distinct changes received per subscription. GET /stats returns them as JSON."""
import http.server, json, sys, time, threading
from datetime import datetime

port = int(sys.argv[1])
lock = threading.Lock()
latencies, seen = [], set()
posts = 0
first = last = None

def ms(text):
    # 2024-05-01T10:00:00.123Z (fromisoformat is C code: the receiver must not be the bottleneck)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global posts, first, last
        now = time.time() * 1000
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        sub = body.get("subscriptionId")
        with lock:
            posts += 1
            first = first or now
            last = now
            for entity in body.get("data", []):
                key = (sub, entity.get("id"), entity.get("modifiedAt"))
                if key in seen:
                    continue
                seen.add(key)
                if entity.get("modifiedAt"):
                    latencies.append(now - ms(entity["modifiedAt"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):
        with lock:
            ordered = sorted(latencies)
            pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0
            stats = {"changes": len(seen), "posts": posts, "p50": pick(0.50), "p99": pick(0.99),
                     "seconds": ((last - first) / 1000) if first else 0}
        data = json.dumps(stats).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
