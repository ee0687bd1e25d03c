"""The ``lstmq-signature`` header: ``t=UNIX_SECONDS,v1=HEX``, HEX the HMAC-SHA256 of
``"{t}.{raw body}"`` keyed with ``LSTMQ_WEBHOOK_SECRET``. A receiver recomputes it over the
bytes it got, compares in constant time, and refuses an old ``t`` (a replayed request)."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "lstmq-signature"


def signature(secret: str, t: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and was made within ``tolerance_s``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        t = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, t, body).split("v1=", 1)[1]
    return abs(now - t) <= tolerance_s and hmac.compare_digest(expected, fields.get("v1", ""))
