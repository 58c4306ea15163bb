"""Credentials out of recorded model specs: an endpoint URL's userinfo (``user:pass@``) and the
values of query parameters whose names look like keys, tokens, secrets, passwords or signatures
become ``REDACTED``, so a spec can be written into rows, metadata, summaries, logs and pages and
still say which endpoint it was. The live request keeps the real URL.

The supported way to authenticate keeps the secret out of the spec altogether: the HTTP
cropper's ``#auth_header=NAME&auth_env=VAR`` sends header ``NAME`` with the value of the
environment variable ``VAR`` (see :mod:`cropaudit.model.plugin`).
"""

from __future__ import annotations

import re
import urllib.parse

MASK = "REDACTED"
#: Query parameter names that carry credentials (matched anywhere in the name, any case).
SECRET_NAME = re.compile(
    r"key|token|secret|passw|credential|signature|auth|session|bearer|jwt"
    r"|(?:^|[_.-])(?:sig|pwd|pw|pass)(?:$|[_.-])",
    re.IGNORECASE,
)


def redact_spec(spec: str) -> str:
    """``spec`` with its credentials replaced by :data:`MASK` (unchanged if it is no URL)."""
    if "://" not in spec:
        return spec
    try:
        parts = urllib.parse.urlsplit(spec)
    except ValueError:
        return spec
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(_redact_pair(p) for p in parts.query.split("&")) if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_pair(pair: str) -> str:
    name, eq, _ = pair.partition("=")
    return f"{name}={MASK}" if eq and SECRET_NAME.search(urllib.parse.unquote_plus(name)) else pair


def redact_text(text: str, specs) -> str:
    """``text`` with each of ``specs`` written redacted (for messages quoting a spec)."""
    for spec in specs:
        shown = redact_spec(spec)
        if shown != spec:
            text = text.replace(spec, shown)
    return text
