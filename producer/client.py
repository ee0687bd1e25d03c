"""A small HTTP client of the lstmq API, for the CLI's ``--api`` mode: a machine that only
submits and reads needs the API's URL and a token, not database or broker credentials.

``LSTMQ_API_URL`` and ``LSTMQ_API_TOKEN`` are read here (the token never on a command line,
where ``ps`` would show it). Problem responses become the ``LstmqError`` the database path
raises for the same mistake, so messages and exit codes match.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPResponse, HTTPSConnection
from urllib.parse import urlencode, urlsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lstmq.errors import ConfigError, InputError, JobNotFound, LstmqError, ServiceUnavailable, UserError

TIMEOUT_S = 600  # a large upload is recorded before the server answers
BLOCK_BYTES = 1 << 20  # upload bytes per socket write
# Status -> the error the database path raises for the same cause (same exit code).
ERRORS: dict[int, type[LstmqError]] = {
    401: ConfigError,
    403: ConfigError,
    404: JobNotFound,
    422: InputError,
    503: ServiceUnavailable,
}


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LSTMQ_API_", extra="ignore")

    url: str | None = None
    token: SecretStr | None = None


@dataclass(frozen=True)
class ApiClient:
    url: str
    token: str = field(repr=False)

    @classmethod
    def for_url(cls, url: str | None) -> ApiClient | None:
        """A client for ``url`` (else ``LSTMQ_API_URL``), or None when neither is set."""
        settings = ApiSettings()
        url = url or settings.url
        if not url:
            return None
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"API URL {url!r}: expected http://HOST:PORT or https://...")
        if settings.token is None:
            raise ConfigError("LSTMQ_API_TOKEN is not set (a token from `lstmq token create NAME --scope submit`)")
        return cls(url.rstrip("/"), settings.token.get_secret_value())

    def get(self, path: str, **query) -> dict:
        with self.request("GET", path, query) as response:
            return json.loads(response.read())

    @contextmanager
    def request(
        self, method: str, path: str, query: dict | None = None, body=None, headers=None
    ) -> Iterator[HTTPResponse]:
        """The response to one request (closed afterwards); an error status raises."""
        parts = urlsplit(self.url)
        connection = (HTTPSConnection if parts.scheme == "https" else HTTPConnection)(
            parts.netloc, timeout=TIMEOUT_S, blocksize=BLOCK_BYTES
        )
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        target = parts.path + path + (f"?{urlencode(_present(query))}" if query else "")
        try:
            try:
                chunked = body is not None and "Content-Length" not in sent
                connection.request(method, target, body=body, headers=sent, encode_chunked=chunked)
                response = connection.getresponse()
            except OSError as exc:
                raise ServiceUnavailable(f"the API at {self.url} is unreachable: {exc}") from None
            if response.status >= 400:
                raise _error(response)
            yield response
        finally:
            connection.close()


def _present(query: dict) -> dict:
    return {key: value for key, value in query.items() if value is not None}


def _error(response: HTTPResponse) -> LstmqError:
    try:
        problem = json.loads(response.read())
    except ValueError:
        problem = {}
    detail = problem.get("detail") or f"HTTP {response.status} {response.reason}"
    if response.status in (401, 403):
        detail = f"the API refused LSTMQ_API_TOKEN: {detail}"
    return ERRORS.get(response.status, UserError if response.status < 500 else LstmqError)(detail)
