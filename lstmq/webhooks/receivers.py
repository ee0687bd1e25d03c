"""Which URLs may receive webhooks: http or https only, and a host whose every address is
global (not private, loopback, link-local, reserved, ...) unless
``LSTMQ_WEBHOOK_ALLOW_PRIVATE=true``. Checked when a receiver is registered and again at each
delivery, where the connection goes to the address checked (a name that resolves elsewhere a
moment later is not asked again)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import SplitResult, urlsplit

from lstmq.errors import ConfigError, InputError, UnsafeReceiver
from lstmq.settings import Settings, mask_url

SCHEMES = {"http": 80, "https": 443}
MAX_RECEIVERS = 10  # per job
MAX_URL_CHARS = 2000


def check_receivers(urls: Sequence[str], settings: Settings) -> list[str]:
    """The receivers a job registers, each checked; refused without a signing secret."""
    urls = list(dict.fromkeys(urls))
    if urls and settings.webhook_secret is None:
        raise ConfigError("--notify needs LSTMQ_WEBHOOK_SECRET set (the key receivers verify signatures with)")
    if len(urls) > MAX_RECEIVERS:
        raise InputError(f"at most {MAX_RECEIVERS} webhook receivers per job, got {len(urls)}")
    for url in urls:
        resolve(url, settings.webhook_allow_private)
    return urls


def resolve(url: str, allow_private: bool) -> tuple[SplitResult, str]:
    """The URL's parts and the address to connect to; ``UnsafeReceiver`` when it is refused."""
    shown = mask_url(url)[:200]
    if len(url) > MAX_URL_CHARS:
        raise UnsafeReceiver(f"webhook URL {shown}...: longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UnsafeReceiver(f"webhook URL {shown}: only http and https receivers are allowed")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        raise UnsafeReceiver(f"webhook URL {shown}: bad port") from None
    if not parts.hostname:
        raise UnsafeReceiver(f"webhook URL {shown}: no host")
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeReceiver(f"webhook URL {shown}: cannot resolve {parts.hostname} ({exc})") from None
    addresses = [info[4][0] for info in infos]
    if not allow_private:
        for address in addresses:
            if not ipaddress.ip_address(address.split("%", 1)[0]).is_global:
                named = parts.hostname if parts.hostname == address else f"{parts.hostname} ({address})"
                raise UnsafeReceiver(
                    f"webhook URL {shown}: {named} is a private, loopback or other non-global address "
                    "(set LSTMQ_WEBHOOK_ALLOW_PRIVATE=true to allow such receivers)"
                )
    return parts, addresses[0]
