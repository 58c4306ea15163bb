"""Black-box croppers: a Python callable, or an HTTP endpoint (a cloud cropping API).

``plugin:module:function`` imports ``function`` from ``module``; ``plugin:NAME`` loads the entry
point ``NAME`` of group ``cropaudit.croppers``. The callable gets ``(image, aspect_ratios)``: an
(H, W, 3) uint8 RGB array and a tuple of ratios (height/width), and returns one box per ratio,
each ``(x, y, w, h)`` or ``{"x", "y", "w", "h"}`` in image pixels (or a ``Cropping``).

``http://HOST/PATH`` / ``https://...``: each image is POSTed as PNG (``Content-Type: image/png``)
with the ratios in the query (``?aspect_ratios=0.56,1,2``); the endpoint answers JSON
``{"boxes": [[x, y, w, h], ...]}``, one box per ratio in the order asked. Client settings go in
the URL's fragment, which is never sent: ``#timeout=10&attempts=4&backoff=0.5&concurrency=4``.
``timeout`` is a deadline for each request as a whole (connect, send and every read: a server
dripping bytes cannot keep it alive); an answer over 1 MiB (after gzip/deflate decoding) is
malformed; a redirect is an error, never followed (it would drop the image or send it
elsewhere: give the final URL); ``NaN``/``Infinity`` or a wrong number of boxes are malformed
(:mod:`cropaudit.model.http_client`). The client retries timeouts, connection errors, 429 and
5xx answers up to ``attempts`` times with exponential backoff (``backoff * 2**k`` seconds),
sends at most ``concurrency`` requests at once per worker, and caches every answer on disk
keyed by the endpoint, the ratios and the sha256 of the image's pixels, so a rerun sends
nothing. An image that still fails (or gets a malformed answer, which is not retried) is
dead-lettered with the reason (``http_error``, ``timeout``, ``malformed_response``); SIGINT or
SIGTERM aborts the requests in flight at once. An HTTP cropper's identity is its URL and
settings: the service behind it may change without notice, so pin a versioned URL.

Credentials: ``#auth_header=Authorization&auth_env=VAR`` sends that header with the value of
environment variable ``VAR`` (read on each worker; the secret never enters the spec). A
``user:pass@`` in the URL is sent as HTTP Basic authentication. Either way, and for query
parameters named like keys, tokens, secrets, passwords or signatures, every recorded copy of
the spec is redacted (:func:`cropaudit.redact.redact_spec`): rows, metadata, summaries, logs
and pages name the endpoint, never the secret.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import importlib.util
import io
import json
import math
import numbers
import os
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cropaudit import fileio
from cropaudit.errors import UserError
from cropaudit.model import http_client
from cropaudit.model.cropper import (
    BoxCropper,
    CropperError,
    LoadedCropper,
    crop_or_error,
    package_version,
)
from cropaudit.redact import redact_spec
from cropaudit.schemas.records import Box, Cropping

ENTRY_POINT_GROUP = "cropaudit.croppers"
#: Answers kept under the model cache (``CROPAUDIT_CACHE``), per endpoint.
CACHE_FOLDER = "http-croppers"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


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
            item = tuple(item)
            if len(item) != 4 or not all(_is_number(v) for v in item):
                raise ValueError(f"box {list(item)} is not four finite numbers")
            if any(int(v) != v for v in item):
                raise ValueError(f"box {list(item)} is not in whole pixels")
            boxes.append(Box(*(int(v) for v in item)))
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise CropperError("malformed_response", f"not a list of boxes: {exc}") from None
    if len(boxes) != len(ratios):
        raise CropperError(
            "malformed_response", f"{len(boxes)} boxes for {len(ratios)} aspect ratios"
        )
    return Cropping(ratios, tuple(boxes))


def _is_number(value: Any) -> bool:
    """A finite real number (``Infinity``, ``NaN``, booleans and strings are not pixels)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


# -- Python callables ----------------------------------------------------------------------------


#: Environment variable: folders (``os.pathsep``-separated) plugin modules may also come from.
PLUGIN_PATH_ENV = "CROPAUDIT_PLUGIN_PATH"
#: The user-level allow list: one plugin spec (``plugin:module:function``, ``plugin:NAME``) or
#: module name per line, ``#`` comments; a config naming only these runs without
#: ``--allow-plugins``.
ALLOW_LIST = "allowed-plugins"


def allow_list_path() -> Path:
    """``$XDG_CONFIG_HOME/cropaudit/allowed-plugins`` (default ``~/.config``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "cropaudit" / ALLOW_LIST


def allowed_plugins() -> set[str]:
    try:
        text = allow_list_path().read_text()
    except OSError:
        return set()
    return {line.split("#", 1)[0].strip() for line in text.splitlines()} - {""}


def code_specs(specs: Sequence[str]) -> list[str]:
    """The specs among ``specs`` that import and run Python code (``plugin:...``)."""
    return [s for s in specs if s.startswith("plugin:")]


def _module_of(spec: str) -> str:
    return spec[len("plugin:") :].partition(":")[0]


def require_allowed(specs: Sequence[str], allow: bool, flag: str = "--allow-plugins") -> None:
    """Refuse specs that would run code unless ``allow`` or the user's allow list names them:
    a config downloaded from elsewhere must not run code just by being run."""
    if allow:
        return
    allowed = allowed_plugins()
    refused = [s for s in code_specs(specs) if not {s, _module_of(s)} & allowed]
    if refused:
        raise UserError(
            f"{refused[0]} would import and run Python code ({describe_code(refused[0])}); "
            f"pass {flag} if you trust it, or list it in {allow_list_path()}"
        )


def describe_code(spec: str) -> str:
    """What ``spec`` would import, found without importing or running anything."""
    target = spec[len("plugin:") :]
    if ":" in target:
        module = target.partition(":")[0]
        found = None
        with _plugin_path(), contextlib.suppress(ImportError, ValueError):
            found = importlib.util.find_spec(module) if "." not in module else None
        where = f" from {found.origin}" if found is not None and found.origin else ""
        return f"module {module}{where}"
    from importlib.metadata import entry_points

    with _plugin_path():
        eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == target]
    if not eps:
        return f"entry point {target} (not installed)"
    dist = getattr(eps[0], "dist", None)
    by = f" of {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point {target} = {eps[0].value}{by}"


@contextlib.contextmanager
def _plugin_path():
    """``sys.path`` without the current directory (``python -m`` and ``''`` put it there),
    plus the folders of :data:`PLUGIN_PATH_ENV`, for the block."""
    cwd = os.path.realpath(os.getcwd())
    extra = [p for p in os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]
    saved = list(sys.path)
    kept = [p for p in saved if p and os.path.realpath(p) != cwd]
    sys.path[:] = [*extra, *kept]
    try:
        yield
    finally:
        sys.path[:] = saved


def resolve_callable(target: str):
    """``module:function`` or an entry point name in :data:`ENTRY_POINT_GROUP`, imported
    without searching the current directory (see :data:`PLUGIN_PATH_ENV`)."""
    with _plugin_path():
        return _resolve(target)


def _resolve(target: str):
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
    """How an HTTP cropper is called: a deadline (s) for each request as a whole, attempts with
    exponential backoff (s) between them, requests in flight at once, and an optional header
    whose value is read from an environment variable (the secret stays out of the spec)."""

    timeout: float = 10.0
    attempts: int = 4
    backoff: float = 0.5
    concurrency: int = 4
    auth_header: str = ""
    auth_env: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout) and self.timeout > 0 and self.attempts >= 1) or not (
            math.isfinite(self.backoff) and self.backoff >= 0
        ):
            raise UserError("HTTP cropper: timeout > 0, attempts >= 1 and backoff >= 0 needed")
        if not 1 <= self.concurrency <= 64:
            raise UserError("HTTP cropper: concurrency must be 1..64")
        if bool(self.auth_header) != bool(self.auth_env):
            raise UserError("HTTP cropper: auth_header and auth_env go together")

    def auth(self) -> dict[str, str]:
        """The authentication header, its value read now from ``auth_env``."""
        if not self.auth_header:
            return {}
        value = os.environ.get(self.auth_env)
        if not value:
            raise UserError(
                f"HTTP cropper: environment variable {self.auth_env} (auth_env) is not set"
            )
        return {self.auth_header: value}


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


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_boxes(raw: bytes, shown: str) -> Any:
    """The ``boxes`` of an endpoint's JSON answer (``NaN``/``Infinity`` refused)."""
    try:
        return json.loads(raw, parse_constant=_no_constant)["boxes"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise CropperError("malformed_response", f"{shown} answered {raw[:200]!r}: {exc}") from None


def _split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """(the URL without ``user:pass@``, the Basic authentication header it stood for)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = (urllib.parse.unquote(p) for p in userinfo.partition(":"))
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


class _HttpLoaded(LoadedCropper):
    def __init__(self, url: str, settings: HttpSettings, cache_dir: str) -> None:
        self._key_url = url  # the cache key: the endpoint as written
        self._url, self._headers = _split_userinfo(url)
        self._headers.update(settings.auth())
        self._shown = redact_spec(url)
        self._settings = settings
        self._cache_dir = cache_dir
        http_client.cancelled.clear()  # a new worker: an earlier run's stop is over
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="cropaudit-http")
        self.requests_sent = 0  # for tests and benchmarks: what a rerun did not send

    def _cache_file(self, image: np.ndarray, ratios: tuple[float, ...]) -> str:
        key = hashlib.sha256(f"{self._key_url}|{ratios}|{image_key(image)}".encode()).hexdigest()
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
        futures = [self._pool.submit(crop_or_error, self.crop, image, ratios) for image in images]
        try:
            return [f.result() for f in futures]
        except BaseException as exc:  # SIGINT/SIGTERM while waiting: end requests, then stop
            http_client.cancel_all()
            self._pool.shutdown(wait=False, cancel_futures=True)
            exc._tagged_with_step = True  # Beam re-raises it as it is, without logging it
            raise

    def _request(self, body: bytes, ratios: tuple[float, ...]) -> Any:
        query = urllib.parse.urlencode({"aspect_ratios": ",".join(f"{r:g}" for r in ratios)})
        url = f"{self._url}{'&' if '?' in self._url else '?'}{query}"
        headers = {"Content-Type": "image/png", **self._headers}
        raw = send("POST", url, body, headers, self._settings, self._shown, self._sent)
        return parse_boxes(raw, self._shown)

    def _sent(self) -> None:
        self.requests_sent += 1


def send(
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    s: HttpSettings,
    shown: str,
    on_attempt=None,
) -> bytes:
    """The body of a 2xx answer to one bounded request (:func:`http_client.request`; ``shown``
    is the URL as messages show it, redacted): timeouts, connection errors and
    :data:`RETRY_STATUS` answers are retried with backoff (``on_attempt()`` is called before
    each attempt); a redirect is refused; what still fails raises :class:`CropperError`."""
    last: CropperError | None = None
    for attempt in range(s.attempts):
        if attempt and http_client.cancelled.wait(s.backoff * 2 ** (attempt - 1)):
            break
        if on_attempt is not None:
            on_attempt()
        try:
            answer = http_client.request(method, url, body, headers, s.timeout, shown)
        except CropperError as exc:
            if exc.reason not in ("timeout", "http_error"):
                raise
            last = exc
            continue
        if 300 <= answer.status < 400:  # a redirect would drop the image (or send it on)
            where = redact_spec(answer.location) or "nowhere"
            raise CropperError(
                "http_error",
                f"HTTP {answer.status} redirect from {shown} to {where} refused "
                "(redirects are not followed; give the final URL)",
            )
        if answer.status >= 400 or answer.status < 200:
            last = CropperError("http_error", f"HTTP {answer.status} from {shown}")
            if answer.status not in RETRY_STATUS:
                raise last
            continue
        return answer.body
    if last is None:
        raise CropperError("cancelled", f"requests to {shown} cancelled: run stopping")
    raise CropperError(last.reason, f"{last} (after {s.attempts} attempts)")


class HttpCropper(BoxCropper):
    def __init__(self, url: str, settings: HttpSettings = HttpSettings(), cache_dir: str = ""):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UserError(f"HTTP cropper: {redact_spec(url)!r} is not an http(s):// URL")
        self.url = url
        self.name = redact_spec(url)  # what every output records: the endpoint, no secret
        self.http = settings
        settings.auth()  # a missing variable fails here, on the launcher
        from cropaudit.model.download import resolve_cache_dir

        endpoint = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.cache_dir = cache_dir or fileio.join(resolve_cache_dir(), CACHE_FOLDER, endpoint)

    @classmethod
    def from_spec(cls, spec: str) -> HttpCropper:
        url, _, fragment = spec.partition("#")
        options = dict(urllib.parse.parse_qsl(fragment, keep_blank_values=True))
        types = {"timeout": float, "attempts": int, "backoff": float, "concurrency": int,
                 "auth_header": str, "auth_env": str}  # fmt: skip
        shown = redact_spec(url)
        unknown = set(options) - set(types)
        if unknown:
            raise UserError(f"HTTP cropper {shown}: unknown settings {sorted(unknown)}; known: "
                            f"{', '.join(types)}")  # fmt: skip
        try:
            settings = HttpSettings(**{k: types[k](v) for k, v in options.items()})
        except ValueError as exc:
            raise UserError(f"HTTP cropper {shown}: bad setting: {exc}") from None
        return cls(url, settings)

    @property
    def source(self) -> str:
        return self.name

    def settings(self) -> Mapping[str, Any]:
        return {"protocol": "png-post/boxes-json/v1", **self.http.__dict__}

    def load_model(self) -> LoadedCropper:
        return _HttpLoaded(self.url, self.http, self.cache_dir)
