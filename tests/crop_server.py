"""A loopback cropping endpoint for the HTTP cropper tests, well-behaved and hostile (127.0.0.1
only; every loop is bounded and ends when the server stops, so it always stops by itself).
Run as a script (``python tests/crop_server.py SECONDS``) it prints its URL and serves that
long, for a test's subprocess or a by-hand check."""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

#: Bytes of zeros behind the gzip bomb (about 20 KB on the wire).
BOMB_BYTES = 64 << 20


def centred_boxes(body: bytes, ratios: list[float]) -> list[list[int]]:
    from PIL import Image

    w, h = Image.open(BytesIO(body)).size
    return [
        [0, 0, w, min(h, round(ar * w))] if ar < h / w else [0, 0, min(w, round(h / ar)), h]
        for ar in ratios
    ]


@functools.cache
def gzip_bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(BOMB_BYTES >> 20)) + packer.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hostile answer still dripping does not hold up the stop
    request_queue_size = 128  # many croppers at full concurrency: no refused connection


class CropServer:
    """Paths: ``/ok`` (centred boxes), ``/slow`` (answers after ``delay`` s), ``/flaky`` (503 for
    the first ``failures`` requests per image, then ok), ``/fail`` (always 500), ``/malformed``
    (not JSON), ``/bad-request`` (400). Hostile: ``/drip`` (the whole answer, status line
    included, one byte every ``drip`` s), ``/endless`` (a chunked body that never ends),
    ``/huge`` (declares and sends 100 MB), ``/redirect`` (302 to ``/ok``; a GET there is counted
    as ``GET /ok``), ``/infinity`` and ``/nan`` (non-finite box numbers), ``/wrong-count`` (one
    box whatever was asked), ``/gzip-bomb`` (a small gzip body that inflates to 64 MB),
    ``/gzip-ok`` (the ``/ok`` answer, gzip-encoded). ``hits`` counts requests per path."""

    def __init__(self, delay: float = 1.0, failures: int = 2, drip: float = 0.5):
        self.delay, self.failures, self.drip = delay, failures, drip
        self.hits: dict[str, int] = {}
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                with server.lock:
                    key = f"GET {urllib.parse.urlsplit(self.path).path}"
                    server.hits[key] = server.hits.get(key, 0) + 1
                self._send(200, b'{"boxes": []}')

            def do_POST(self):
                url = urllib.parse.urlsplit(self.path)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                asked = urllib.parse.parse_qs(url.query)["aspect_ratios"][0]
                ratios = [float(r) for r in asked.split(",")]
                with server.lock:
                    key = f"{url.path}:{hash(body)}"
                    server.hits[url.path] = server.hits.get(url.path, 0) + 1
                    n = server.hits[key] = server.hits.get(key, 0) + 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.last_headers = dict(self.headers)
                try:
                    time.sleep(0.05)  # long enough for concurrent requests to overlap
                    self._answer(url.path, n, body, ratios)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up and left, as the hostile tests intend
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, path, n, body, ratios):
                if path == "/slow":
                    server.stopping.wait(server.delay)
                if path == "/fail" or (path == "/flaky" and n <= server.failures):
                    return self._send(500 if path == "/fail" else 503, b"busy")
                if path == "/bad-request":
                    return self._send(400, b"no")
                if path == "/malformed":
                    return self._send(200, b"<html>not json</html>")
                boxes = centred_boxes(body, ratios)
                ok = json.dumps({"boxes": boxes}).encode()
                if path == "/drip":
                    return self._drip(ok)
                if path in ("/endless", "/huge"):
                    return self._flood(path == "/endless")
                if path == "/redirect":
                    return self._send(302, b"", Location=f"{server.url}/ok")
                if path in ("/infinity", "/nan"):
                    number = "Infinity" if path == "/infinity" else "NaN"
                    bad = json.dumps({"boxes": boxes}).replace(str(boxes[0][2]), number, 1)
                    return self._send(200, bad.encode())
                if path == "/wrong-count":
                    return self._send(200, json.dumps({"boxes": boxes[:1]}).encode())
                if path == "/gzip-bomb":
                    return self._send(200, server.bomb, **{"Content-Encoding": "gzip"})
                if path == "/gzip-ok":
                    packed = zlib.compress(ok, wbits=16 + zlib.MAX_WBITS)
                    return self._send(200, packed, **{"Content-Encoding": "gzip"})
                self._send(200, ok)

            def _drip(self, data):
                raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
                for byte in raw[:200]:  # at most 200 bytes, then the server stops sending
                    if server.stopping.wait(server.drip):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                self.close_connection = True

            def _flood(self, chunked):
                block = b"x" * (64 << 10)
                self.send_response(200)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(100 << 20))
                self.end_headers()
                for _ in range(1600):  # at most 100 MB, ended early by the client or a stop
                    if server.stopping.is_set():
                        return
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                self.close_connection = True

            def _send(self, status, data, **headers):
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.bomb = gzip_bomb()
        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


if __name__ == "__main__":
    with CropServer() as s:
        print(s.url, flush=True)
        s.stopping.wait(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
