"""One bounded HTTP request for the HTTP croppers (``http://``, thumbor): a deadline for the
whole exchange, a size cap on the answer, no redirects, and cancellation of every request in
flight.

``urllib``'s timeout applies to each socket operation, so a server sending a byte every few
seconds keeps a request alive forever, and it follows redirects (turning the POST into a GET
without the image). Here a timer shuts the socket down when the deadline passes (connect, send
and every read count against it), the answer is read in chunks up to :data:`MAX_RESPONSE_BYTES`
(after gzip/deflate decoding, which is bounded too), a 3xx answer is an error, and
:func:`cancel_all` aborts every open request at once (on SIGINT/SIGTERM, so a run ends in
moments instead of waiting for its requests).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import urllib.parse
import zlib
from dataclasses import dataclass

from cropaudit.model.cropper import CropperError

#: The largest answer read (boxes JSON is a few hundred bytes); a longer one is malformed.
MAX_RESPONSE_BYTES = 1 << 20
_CHUNK = 64 * 1024
_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}

_open: set[_Exchange] = set()
_open_lock = threading.Lock()
#: Set by :func:`cancel_all`; requests refuse to start (and backoffs end) while it is set.
cancelled = threading.Event()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    location: str = ""


class _Exchange:
    """One connection with its deadline timer; :meth:`abort` ends it from any thread."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        kwargs = {"context": ssl.create_default_context()} if parts.scheme == "https" else {}
        self.conn = kind(parts.hostname, parts.port, timeout=timeout, **kwargs)
        self.target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        self.why = ""
        self.timer = threading.Timer(timeout, self.abort, ("timeout",))
        self.timer.daemon = True

    def abort(self, why: str) -> None:
        self.why = self.why or why
        sock = self.conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # a blocked recv returns at once
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Exchange:
        with _open_lock:
            _open.add(self)
        self.timer.start()
        if cancelled.is_set():
            self.abort("cancelled")
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()
        with _open_lock:
            _open.discard(self)
        self.conn.close()


def cancel_all() -> None:
    """Abort every request in flight and refuse new ones (a run that is being stopped)."""
    cancelled.set()
    with _open_lock:
        exchanges = list(_open)
    for exchange in exchanges:
        exchange.abort("cancelled")


def request(
    method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float, shown: str
) -> Answer:
    """``method`` ``url`` (with ``body``, if any); the whole exchange ends within ``timeout``
    seconds.

    Raises :class:`CropperError` ``timeout`` (deadline passed), ``cancelled``, ``http_error``
    (connection failures) or ``malformed_response`` (answer too large, badly encoded);
    ``shown`` is the URL as messages may show it (redacted).
    """
    if cancelled.is_set():
        raise CropperError("cancelled", f"request to {shown} not sent: the run is stopping")
    headers = {**headers, "Accept-Encoding": "identity"}
    if body is not None:
        headers["Content-Length"] = str(len(body))
    with _Exchange(url, timeout) as ex:
        try:
            ex.conn.request(method, ex.target, body=body, headers=headers)
            response = ex.conn.getresponse()
            raw = _read_capped(response, shown)
            status, location = response.status, response.getheader("Location", "")
            encoding = (response.getheader("Content-Encoding") or "identity").lower().strip()
        except (OSError, http.client.HTTPException) as exc:
            if ex.why:
                raise _ended(ex.why, timeout, shown) from None
            raise CropperError("http_error", f"{type(exc).__name__}: {exc} ({shown})") from None
        if ex.why:  # the socket was shut down mid-read: what was read is not the answer
            raise _ended(ex.why, timeout, shown)
    return Answer(status, _decoded(raw, encoding, shown), location)


def _ended(why: str, timeout: float, shown: str) -> CropperError:
    if why == "cancelled":
        return CropperError("cancelled", f"request to {shown} cancelled: the run is stopping")
    return CropperError("timeout", f"no complete answer from {shown} within {timeout:g} s")


def _read_capped(response: http.client.HTTPResponse, shown: str) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise _too_large(shown, f"declares {int(declared)} bytes")
    chunks, size = [], 0
    while True:
        chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise _too_large(shown, "is longer")
        chunks.append(chunk)


def _decoded(raw: bytes, encoding: str, shown: str) -> bytes:
    if encoding == "identity":
        return raw
    if encoding not in _ENCODINGS:
        raise CropperError(
            "malformed_response", f"{shown}: unsupported Content-Encoding {encoding}"
        )
    inflater = zlib.decompressobj(_ENCODINGS[encoding])
    try:
        out = inflater.decompress(raw, MAX_RESPONSE_BYTES + 1)
    except zlib.error as exc:
        raise CropperError("malformed_response", f"{shown}: bad {encoding} body: {exc}") from None
    if len(out) > MAX_RESPONSE_BYTES:
        raise _too_large(shown, f"inflates ({encoding}) beyond it")
    return out


def _too_large(shown: str, how: str) -> CropperError:
    return CropperError(
        "malformed_response", f"the answer of {shown} {how} (limit {MAX_RESPONSE_BYTES} bytes)"
    )
