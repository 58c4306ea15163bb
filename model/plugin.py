"""Black-box croppers: a Python callable, or an HTTP endpoint (a cloud cropping API).

``plugin:module:function`` imports ``function`` from ``module``; ``plugin:NAME`` loads the entry
point ``NAME`` of group ``cropaudit.croppers``. The callable gets ``(image, aspect_ratios)``: an
(H, W, 3) uint8 RGB array and a tuple of ratios (height/width), and returns one box per ratio,
each ``(x, y, w, h)`` or ``{"x", "y", "w", "h"}`` in image pixels (or a ``Cropping``).

``http://HOST/PATH`` / ``https://...``: each image is POSTed as PNG (``Content-Type: image/png``)
with the ratios in the query (``?aspect_ratios=0.56,1,2``); the endpoint answers JSON
``{"boxes": [[x, y, w, h], ...]}``, one box per ratio in the order asked. Client settings go in
the URL's fragment, which is never sent: ``#timeout=10&attempts=4&backoff=0.5&concurrency=4``.
The client times out every request, retries timeouts, connection errors, 429 and 5xx answers
up to ``attempts`` times with exponential backoff (``backoff * 2**k`` seconds), sends at most
``concurrency`` requests at once per worker, and caches every answer on disk keyed by the
endpoint, the ratios and the sha256 of the image's pixels, so a rerun sends nothing. An image
that still fails (or gets a malformed answer, which is not retried) is dead-lettered with the
reason (``http_error``, ``timeout``, ``malformed_response``). An HTTP cropper's identity is its
URL and settings: the service behind it may change without notice, so pin a versioned URL.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cropaudit import fileio
from cropaudit.errors import UserError
from cropaudit.model.cropper import BoxCropper, LoadedCropper, crop_or_error, package_version
from cropaudit.schemas.records import Box, Cropping

ENTRY_POINT_GROUP = "cropaudit.croppers"
#: Answers kept under the model cache (``CROPAUDIT_CACHE``), per endpoint.
CACHE_FOLDER = "http-croppers"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class CropperError(Exception):
    """A cropper failure with a short reason code for its dead letter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def plugin_cropper(spec: str) -> BoxCropper:
    """The cropper for a ``plugin:...`` or ``http(s)://...`` spec."""
    if spec.startswith("plugin:"):
        return CallableCropper(spec[len("plugin:") :])
    return HttpCropper.from_spec(spec)


def as_boxes(result: Any, ratios: tuple[float, ...]) -> Cropping:
    """A callable's or endpoint's answer -> :class:`Cropping`; ``CropperError`` if malformed."""
    if isinstance(result, Cropping):
        return result
    try:
        boxes = []
        for item in result:
            if isinstance(item, Mapping):
                item = (item["x"], item["y"], item["w"], item["h"])
            x, y, w, h = (int(v) for v in item)
            if any(int(v) != v for v in item):
                raise ValueError(f"box {list(item)} is not in whole pixels")
            boxes.append(Box(x, y, w, h))
    except (TypeError, ValueError, KeyError) as exc:
        raise CropperError("malformed_response", f"not a list of boxes: {exc}") from None
    if len(boxes) != len(ratios):
        raise CropperError(
            "malformed_response", f"{len(boxes)} boxes for {len(ratios)} aspect ratios"
        )
    return Cropping(ratios, tuple(boxes))


# -- Python callables ----------------------------------------------------------------------------


def resolve_callable(target: str):
    """``module:function`` or an entry point name in :data:`ENTRY_POINT_GROUP`."""
    if ":" in target:
        module_name, _, attr = target.partition(":")
        try:
            obj = importlib.import_module(module_name)
        except ImportError as exc:
            raise UserError(
                f"cropper plugin {target!r}: cannot import {module_name}: {exc}"
            ) from None
        for part in attr.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                raise UserError(f"cropper plugin {target!r}: {module_name} has no {attr}")
    else:
        from importlib.metadata import entry_points

        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == target]
        if not found:
            raise UserError(
                f"cropper plugin {target!r}: no entry point of that name in group "
                f"{ENTRY_POINT_GROUP!r} (or write plugin:module:function)"
            )
        obj = found[0].load()
    if not callable(obj):
        raise UserError(f"cropper plugin {target!r} is not callable")
    return obj


def _module_digest(fn) -> tuple[str, str]:
    """(module, sha256 of its source file or '') of a callable: its recorded version."""
    import inspect

    module = getattr(fn, "__module__", "") or ""
    try:
        source = inspect.getsourcefile(fn)
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else ""
    except (TypeError, OSError):
        digest = ""
    return module, digest


class _CallableLoaded(LoadedCropper):
    def __init__(self, fn) -> None:
        self._fn = fn

    def crop(self, image: np.ndarray, ratios: tuple[float, ...]) -> Cropping:
        return as_boxes(self._fn(image, ratios), ratios)


class CallableCropper(BoxCropper):
    def __init__(self, target: str) -> None:
        self.target = target
        self.name = f"plugin:{target}"
        module, digest = _module_digest(resolve_callable(target))  # fails here, on the launcher
        top = module.split(".")[0]
        self._settings = {"callable": target, "module_sha256": digest}
        self._source = f"python:{module} ({top} {package_version(top)})"

    @property
    def source(self) -> str:
        return self._source

    def settings(self) -> Mapping[str, Any]:
        return self._settings

    def load_model(self) -> LoadedCropper:
        return _CallableLoaded(resolve_callable(self.target))


# -- HTTP endpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpSettings:
    """How an HTTP cropper is called: per-request timeout (s), attempts with exponential
    backoff (s) between them, and requests in flight at once."""

    timeout: float = 10.0
    attempts: int = 4
    backoff: float = 0.5
    concurrency: int = 4

    def __post_init__(self) -> None:
        if not (self.timeout > 0 and self.attempts >= 1 and self.backoff >= 0):
            raise UserError("HTTP cropper: timeout > 0, attempts >= 1 and backoff >= 0 needed")
        if not 1 <= self.concurrency <= 64:
            raise UserError("HTTP cropper: concurrency must be 1..64")


def image_key(image: np.ndarray) -> str:
    """sha256 of an image's shape and pixels: the same picture gives the same key."""
    h = hashlib.sha256(repr(image.shape).encode())
    h.update(np.ascontiguousarray(image, np.uint8).tobytes())
    return h.hexdigest()


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


class _HttpLoaded(LoadedCropper):
    def __init__(self, url: str, settings: HttpSettings, cache_dir: str) -> None:
        self._url = url
        self._settings = settings
        self._cache_dir = cache_dir
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="cropaudit-http")
        self.requests_sent = 0  # for tests and benchmarks: what a rerun did not send

    def _cache_file(self, image: np.ndarray, ratios: tuple[float, ...]) -> str:
        key = hashlib.sha256(f"{self._url}|{ratios}|{image_key(image)}".encode()).hexdigest()
        return fileio.join(self._cache_dir, f"{key}.json")

    def crop(self, image: np.ndarray, ratios: tuple[float, ...]) -> Cropping:
        cached = self._cache_file(image, ratios)
        if fileio.exists(cached):
            return as_boxes(json.loads(fileio.read_bytes(cached))["boxes"], ratios)
        boxes = self._request(png_bytes(image), ratios)
        cropping = as_boxes(boxes, ratios)  # only a well-formed answer is cached
        fileio.write_atomic(cached, json.dumps({"boxes": boxes}).encode())
        return cropping

    def crop_many(self, images: Sequence[np.ndarray], ratios: tuple[float, ...]) -> list:
        return list(self._pool.map(lambda im: crop_or_error(self.crop, im, ratios), images))

    def _request(self, body: bytes, ratios: tuple[float, ...]) -> Any:
        query = urllib.parse.urlencode({"aspect_ratios": ",".join(f"{r:g}" for r in ratios)})
        url = f"{self._url}{'&' if '?' in self._url else '?'}{query}"

        def request() -> urllib.request.Request:
            self.requests_sent += 1
            return urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "image/png"}
            )

        raw = send(request, self._settings, self._url)
        try:
            return json.loads(raw)["boxes"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CropperError(
                "malformed_response", f"{self._url} answered {raw[:200]!r}: {exc}"
            ) from None


def send(request, s: HttpSettings, where: str) -> bytes:
    """The body of the answer to ``request()`` (called once per attempt): timeouts, connection
    errors and :data:`RETRY_STATUS` answers are retried with backoff; what still fails raises
    :class:`CropperError` (``http_error`` or ``timeout``) naming ``where``."""
    last: CropperError | None = None
    for attempt in range(s.attempts):
        if attempt:
            time.sleep(s.backoff * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(request(), timeout=s.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            last = CropperError("http_error", f"HTTP {exc.code} from {where}")
            if exc.code not in RETRY_STATUS:
                raise last from None
            continue
        except (TimeoutError, OSError) as exc:  # URLError is an OSError
            reason = getattr(exc, "reason", exc)
            kind = (
                "timeout"
                if isinstance(reason, TimeoutError) or "timed out" in str(reason)
                else "http_error"
            )
            last = CropperError(kind, f"{type(exc).__name__}: {reason} ({where})")
            continue
    assert last is not None
    raise CropperError(last.reason, f"{last} (after {s.attempts} attempts)")


class HttpCropper(BoxCropper):
    def __init__(self, url: str, settings: HttpSettings = HttpSettings(), cache_dir: str = ""):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UserError(f"HTTP cropper: {url!r} is not an http(s):// URL")
        self.url = url
        self.name = url
        self.http = settings
        from cropaudit.model.download import resolve_cache_dir

        endpoint = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.cache_dir = cache_dir or fileio.join(resolve_cache_dir(), CACHE_FOLDER, endpoint)

    @classmethod
    def from_spec(cls, spec: str) -> HttpCropper:
        url, _, fragment = spec.partition("#")
        options = dict(urllib.parse.parse_qsl(fragment, keep_blank_values=True))
        types = {"timeout": float, "attempts": int, "backoff": float, "concurrency": int}
        unknown = set(options) - set(types)
        if unknown:
            raise UserError(f"HTTP cropper {url}: unknown settings {sorted(unknown)}; known: "
                            f"{', '.join(types)}")  # fmt: skip
        try:
            settings = HttpSettings(**{k: types[k](v) for k, v in options.items()})
        except ValueError as exc:
            raise UserError(f"HTTP cropper {url}: bad setting: {exc}") from None
        return cls(url, settings)

    @property
    def source(self) -> str:
        return self.url

    def settings(self) -> Mapping[str, Any]:
        return {"protocol": "png-post/boxes-json/v1", **self.http.__dict__}

    def load_model(self) -> LoadedCropper:
        return _HttpLoaded(self.url, self.http, self.cache_dir)
