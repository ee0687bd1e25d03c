"""``lstmq.Client``: the lstmq HTTP API (``lstmq serve``) from Python, and the CLI's ``--api`` mode.

A program that submits and reads needs the API's URL and a token, not database or broker
credentials::

    from lstmq import Client

    client = Client("http://lstmq.internal:8000", token)
    job = client.submit("docs.jsonl", model="news")
    client.wait(job.id)
    for row in client.results(job.id):
        print(row.id, row.label, row.score)

Answers are the models of ``lstmq.apischema``, the ones the server declares. Errors are
``lstmq.errors`` classes: the server names the class in its problem object, and the client
raises that class again (``JobNotFound``, ``InputError``, ``ModelNotFound``...), so a mistake
reads and exits as it does on the database path; a problem without a class falls back to its
status (401/403 ``ConfigError``, 404 ``JobNotFound``, 422 ``InputError``, 502-504
``ServiceUnavailable``), and an API that cannot be reached is ``ServiceUnavailable``.

Uploads and results stream: neither side holds a whole input or result set in memory. Each call
opens its own connection (plain ``http.client``), so one client may serve several threads.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from http.client import HTTPConnection, HTTPException, HTTPResponse, HTTPSConnection
from itertools import chain
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from lstmq import errors
from lstmq.apischema import (
    Job,
    JobPage,
    JobQuality,
    JobStatus,
    JobSummary,
    ModelList,
    Rejections,
    Requeued,
    ResultRow,
    ReviewSample,
    ReviewsRecorded,
    Submission,
)
from lstmq.errors import (
    ConfigError,
    InputError,
    JobNotFound,
    LstmqError,
    PermissionDenied,
    ServiceUnavailable,
    UserError,
    WaitTimedOut,
    kind_of,
)
from lstmq.readers.sources import FORMATS, format_of, resolve_sources

__all__ = ["Client", "ResultStream"]

API = "/api/v1"
TIMEOUT_S = 600.0  # per socket operation: a large upload is recorded before the server answers
BLOCK_BYTES = 1 << 20  # upload bytes per socket write (and per chunk of streamed records)
POLL_S = 1.0  # Client.wait's default interval between two status requests
MAX_PAGE_JOBS = 500  # the API's largest page of jobs
JSON_LINES = "application/x-ndjson"
# A problem that names no lstmq error: its status decides (the database path's exit codes).
ERROR_OF_STATUS: dict[int, type[LstmqError]] = {
    401: ConfigError,
    403: ConfigError,
    404: JobNotFound,
    413: InputError,  # the upload is too large
    415: InputError,  # an encoding the API does not read
    422: InputError,
    502: ServiceUnavailable,
    503: ServiceUnavailable,
    504: ServiceUnavailable,
}
# urn:lstmq:<kind> -> the class the server raised (problems' kind_of); "bad-parameters" is a 422.
ERROR_OF_KIND: dict[str, type[LstmqError]] = {
    kind_of(cls): cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, LstmqError) and cls.__module__ == errors.__name__
}
Model = TypeVar("Model", bound=BaseModel)
_NONE = object()


class ApiSettings(BaseSettings):
    """``LSTMQ_API_URL`` and ``LSTMQ_API_TOKEN``."""

    model_config = SettingsConfigDict(env_prefix="LSTMQ_API_", extra="ignore")

    url: str | None = None
    token: SecretStr | None = None


class Client:
    """A client of one lstmq API.

    ``url`` is where ``lstmq serve`` listens (``http://HOST:PORT``, or ``https://`` behind a
    proxy; a path prefix is kept). ``token`` comes from ``lstmq token create NAME --scope
    SCOPE``: read for status and results, submit to submit, admin to cancel and requeue.
    ``timeout_s`` bounds each wait on the socket, not a whole upload or download.
    ``Client.from_env()`` reads both from ``LSTMQ_API_URL`` and ``LSTMQ_API_TOKEN``.

    Every method raises an ``lstmq.errors.LstmqError`` with a one-line message on failure.
    """

    def __init__(self, url: str, token: str, *, timeout_s: float = TIMEOUT_S) -> None:
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"API URL {url!r}: expected http://HOST:PORT or https://...")
        token = (token or "").strip()
        if not token:
            raise ConfigError("no API token given (one from `lstmq token create NAME --scope submit`)")
        if not token.isprintable() or " " in token:
            raise ConfigError("the API token has spaces or control characters in it; pass the token alone")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._token = token
        self._token_name = "the API token"  # how refusals name it: from_env says which variable
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")

    def __repr__(self) -> str:
        return f"Client({self.url!r})"  # never the token

    @classmethod
    def from_env(cls, url: str | None = None) -> Client | None:
        """A client for ``url`` (else ``LSTMQ_API_URL``) with ``LSTMQ_API_TOKEN``, or None when
        no URL is set either way. The token is read from the environment only: on a command
        line ``ps`` would show it."""
        settings = ApiSettings()
        url = url or settings.url
        if not url:
            return None
        if settings.token is None:
            raise ConfigError("LSTMQ_API_TOKEN is not set (a token from `lstmq token create NAME --scope submit`)")
        client = cls(url, settings.token.get_secret_value())
        client._token_name = "LSTMQ_API_TOKEN"
        return client

    # --- jobs ------------------------------------------------------------------------------

    def submit(
        self,
        source: str | os.PathLike | IO[bytes] | Iterable[Mapping | str],
        model: str,
        task: str = "classify",
        *,
        format: str | None = None,
        text_field: str = "text",
        id_field: str = "id",
        batch_size: int | None = None,
        strict: bool = False,
        priority: str = "normal",
        idempotency_key: str | None = None,
        notify: Iterable[str] = (),
        reuse: bool = True,
    ) -> Submission:
        """Submit documents as one job, as ``lstmq submit`` does; returns its id and counts.

        ``source`` is one of:

        - a path to a file (JSON Lines, CSV, TSV or text, gzipped or not; the format from its
          name unless ``format`` says), sent as it is;
        - a binary file object (``open(path, "rb")``, ``sys.stdin.buffer``), sent in chunks;
          ``format`` defaults to JSON Lines;
        - an iterable of records, sent as JSON Lines as it is read (a generator of millions is
          never held in memory): a dict is one JSON object (its ``text_field`` holds the text,
          its ``id_field`` the document id), a str is a text.

        ``task`` is classify or render; ``model`` an installed model (``models()``).
        ``text_field`` and ``id_field`` name the fields or columns to read, ``batch_size`` the
        documents per message, and ``strict`` refuses the whole input if any line is bad
        (else bad lines are counted and listed: ``first_rejected``, ``rejected()``).
        ``priority`` (high, normal or low, up to the token's maximum) orders the job against
        others; its owner is the token's name. Sending the same ``idempotency_key`` again
        returns the first job instead of making a second. ``notify``: webhook receivers (URLs)
        of the job's events (the server needs ``LSTMQ_WEBHOOK_SECRET``). ``reuse=False`` runs the
        model on every document, even one whose text already has a result of the model's version
        (by default that result is copied and the document counted as ``reused``).
        """
        if not model:
            raise InputError("submit needs a model (Client.models() lists them)")
        query = {"task": task, "model": model, "text_field": text_field, "id_field": id_field}
        query |= {"batch_size": batch_size, "strict": "true" if strict else None, "priority": priority}
        query |= {"notify": list(notify) or None, "reuse": None if reuse else "false"}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        with self._body(source, format, text_field) as (body, fmt, more):
            query["format"] = fmt
            return self._json(Submission, "POST", "/jobs", query, body=body, headers=headers | more)

    def status(self, job: str) -> Job:
        """A job's counts, rate, ETA and health (the object ``lstmq status --json`` prints)."""
        return self._json(Job, "GET", f"/jobs/{_segment(job)}")

    def wait(self, job: str, timeout: float | None = None, poll_s: float = POLL_S) -> Job:
        """Poll ``status`` every ``poll_s`` seconds until the job is finished or cancelled, and
        return that last status (look at ``failed`` and ``state``: a job with failed documents
        or cancelled is an answer, not an error). Raises ``WaitTimedOut`` (a ``TimeoutError``)
        after ``timeout`` seconds; the job goes on."""
        if poll_s <= 0:
            raise InputError(f"poll_s must be above 0, got {poll_s!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.status(job)
            if current.ended:
                return current
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimedOut(
                    f"job {current.id} still {current.state} after {timeout:g} s ({current.pending:,} pending)"
                )
            time.sleep(poll_s if left is None else min(poll_s, left))

    def results(
        self,
        job: str,
        *,
        label: str | None = None,
        status: str | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
    ) -> ResultStream:
        """One ``ResultRow`` per document, streamed as the server sends them (memory stays flat
        for any job). Filters: ``label`` (classify jobs), ``status`` (pending, done or failed),
        and score bounds. Errors (an unknown job, a bad filter) are raised here, before the
        first row; iterate the answer, ideally in a ``with`` block, which closes the connection
        if you stop early."""
        query = {"label": label, "status": status, "min_score": min_score, "max_score": max_score}
        connection, response = self._send("GET", f"/jobs/{_segment(job)}/results", query | {"format": "jsonl"})
        return ResultStream(response, connection.close, self.url)

    def jobs(self, limit: int = 50, *, state: str | None = None, schedule: str | None = None) -> list[JobSummary]:
        """The ``limit`` newest jobs, newest first (as ``lstmq jobs``), fetched a page at a
        time; ``state`` (submitting, queued, finished, cancelled) and ``schedule`` (a schedule's
        name) filter them."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InputError(f"limit must be a whole number of at least 1, got {limit!r}")
        found: list[JobSummary] = []
        before = None
        while len(found) < limit:
            query = {"limit": min(limit - len(found), MAX_PAGE_JOBS), "before": before, "state": state}
            page = self._json(JobPage, "GET", "/jobs", query | {"schedule": schedule})
            found += page.jobs
            before = page.next
            if before is None:
                break
        return found

    def rejected(self, job: str) -> Rejections:
        """The lines an API submission refused (the first 10,000 are kept), with why."""
        return self._json(Rejections, "GET", f"/jobs/{_segment(job)}/rejected")

    def cancel(self, job: str) -> JobStatus:
        """Stop a job (admin token): workers skip its pending documents; a finished job stays
        as it is. Returns its status afterwards."""
        return self._json(JobStatus, "POST", f"/jobs/{_segment(job)}/cancel")

    def requeue(self, job: str, batch_size: int | None = None) -> Requeued:
        """Offer the documents of a job that have no result to the dispatcher again (admin
        token); ``batch_size``: the job's documents per message from now on (default: as it was)."""
        return self._json(Requeued, "POST", f"/jobs/{_segment(job)}/requeue", {"batch_size": batch_size})

    def set_priority(self, job: str, priority: str) -> JobStatus:
        """Change a waiting or running job's priority (admin token), from its next batch on."""
        return self._json(JobStatus, "POST", f"/jobs/{_segment(job)}/priority", {"priority": priority})

    def review_sample(self, job: str, mode: str = "random", n: int = 50) -> ReviewSample:
        """The first ``n`` documents of the job's fixed review sample (random or least-confident),
        unreviewed first; a larger ``n`` extends the same sample."""
        return self._json(ReviewSample, "GET", f"/jobs/{_segment(job)}/review-sample", {"mode": mode, "n": n})

    def review(self, job: str, answers: Mapping[str, str], mode: str = "random") -> ReviewsRecorded:
        """Record labels for documents of the job (review token): ``{document id: label}``."""
        body = json.dumps([{"id": key, "label": label} for key, label in answers.items()]).encode()
        headers = {"Content-Type": "application/json"}
        path = f"/jobs/{_segment(job)}/reviews"
        return self._json(ReviewsRecorded, "POST", path, {"mode": mode}, body=body, headers=headers)

    def quality(self, job: str) -> JobQuality:
        """Reviewed agreement (95 % interval) beside expected accuracy, for the job and each label."""
        return self._json(JobQuality, "GET", f"/jobs/{_segment(job)}/quality")

    def models(self) -> ModelList:
        """The models installed where the API runs, and the folders that fail to load."""
        return self._json(ModelList, "GET", "/models")

    # --- HTTP ------------------------------------------------------------------------------

    def _json(self, model: type[Model], method: str, path: str, query: dict | None = None, **sent) -> Model:
        with self._open(method, path, query, **sent) as response:
            raw = response.read()
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the answer"
            raise LstmqError(
                f"the API at {self.url} answered {method} {API}{path} with something other than a {model.__name__} "
                f"({where}: {first['msg']}); is it an lstmq API of this version?"
            ) from None

    @contextmanager
    def _open(
        self, method: str, path: str, query: dict | None = None, body=None, headers: dict | None = None
    ) -> Iterator[HTTPResponse]:
        """The response to one request (closed afterwards); an error status raises."""
        connection, response = self._send(method, path, query, body, headers)
        try:
            yield response
        finally:
            connection.close()

    def _send(
        self, method: str, path: str, query: dict | None = None, body=None, headers: dict | None = None
    ) -> tuple[HTTPConnection, HTTPResponse]:
        """One request and its response, whose connection the caller closes; an error status
        raises (and closes it)."""
        connection = (HTTPSConnection if self._https else HTTPConnection)(
            self._netloc, timeout=self.timeout_s, blocksize=BLOCK_BYTES
        )
        sent = {"Authorization": f"Bearer {self._token}", **(headers or {})}
        present = {key: value for key, value in (query or {}).items() if value is not None}
        target = self._prefix + API + path + (f"?{urlencode(present, doseq=True)}" if present else "")
        try:
            response = self._exchange(connection, method, target, body, sent)
            if response.status >= 400:
                raise self._error(response, target)
        except BaseException:
            connection.close()
            raise
        return connection, response

    def _exchange(self, connection: HTTPConnection, method: str, target: str, body, headers: dict) -> HTTPResponse:
        chunked = body is not None and "Content-Length" not in headers
        try:
            connection.request(method, target, body=body, headers=headers, encode_chunked=chunked)
            return connection.getresponse()
        except (OSError, HTTPException) as exc:
            raise ServiceUnavailable(f"the API at {self.url} is unreachable: {exc or type(exc).__name__}") from None

    def _error(self, response: HTTPResponse, target: str) -> LstmqError:
        """The ``LstmqError`` a problem response stands for."""
        try:
            problem = json.loads(response.read())
        except (ValueError, OSError, HTTPException):
            problem = None
        if not isinstance(problem, dict):
            problem = {}
        detail = str(problem.get("detail") or f"HTTP {response.status} {response.reason} from {self.url}")
        first = problem.get("first_rejected")
        if isinstance(first, list) and first and isinstance(first[0], dict):  # a refused --strict input
            detail += f"; first at line {first[0].get('line')}: {first[0].get('reason')}"
        detail = " ".join(detail.split())  # one line, whatever the server sent
        kind = str(problem.get("type", "")).removeprefix("urn:lstmq:")
        if response.status in (401, 403) and kind != kind_of(PermissionDenied):
            return ConfigError(f"the API refused {self._token_name}: {detail}")
        if kind in ERROR_OF_KIND:
            return ERROR_OF_KIND[kind](detail)
        if response.status == 404:  # no lstmq error behind it: no such route
            detail = f"{detail}: {self._netloc}{target.split('?')[0]} (is {self.url} an lstmq API?)"
        return ERROR_OF_STATUS.get(response.status, UserError if response.status < 500 else LstmqError)(detail)

    @contextmanager
    def _body(self, source, fmt: str | None, text_field: str) -> Iterator[tuple[object, str | None, dict]]:
        """(body, format, headers) for ``submit``: a file with its length, a stream in chunks,
        or records as JSON Lines."""
        if isinstance(source, str | os.PathLike):
            path, fmt = _file(source, fmt)
            try:
                file = path.open("rb")
            except OSError as exc:
                raise InputError(f"{path}: {exc.strerror}") from None
            with file:
                yield file, fmt, {"Content-Length": str(os.fstat(file.fileno()).st_size)}
        elif isinstance(source, io.TextIOBase):
            raise InputError("submit reads bytes: open the file in binary mode ('rb'), or use sys.stdin.buffer")
        elif hasattr(source, "read"):
            yield source, fmt, {}
        elif isinstance(source, bytes | bytearray | Mapping) or not isinstance(source, Iterable):
            raise InputError(
                f"submit takes a path, a binary file or an iterable of records (dicts or texts), not {type(source).__name__}"
            )
        else:
            if fmt not in (None, "jsonl"):
                raise InputError(f"records are sent as JSON Lines, not as {fmt}")
            records = iter(source)
            first = next(records, _NONE)
            if first is _NONE:
                raise InputError("submit got no records")
            yield _json_lines(chain([first], records), text_field), "jsonl", {"Content-Type": JSON_LINES}


class ResultStream(Iterator[ResultRow]):
    """The rows of ``Client.results``, read from the open response as you iterate; the
    connection closes at the end, on ``close()``, or when a ``with`` block ends."""

    def __init__(self, response: HTTPResponse, close: Callable[[], None], url: str) -> None:
        self._closed = False
        self._lines = iter(response)
        self._close = close
        self._url = url

    def __iter__(self) -> ResultStream:
        return self

    def __next__(self) -> ResultRow:
        if self._closed:
            raise StopIteration
        try:
            line = next(self._lines)
        except StopIteration:
            self.close()
            raise
        except (OSError, HTTPException) as exc:
            self.close()
            raise ServiceUnavailable(f"the API at {self._url} stopped sending results: {exc}") from None
        try:
            return ResultRow.model_validate_json(line)
        except ValidationError as exc:
            self.close()
            error = exc.errors()[0]
            raise LstmqError(f"the API at {self._url} sent a result row that is not one: {error['msg']}") from None

    def close(self) -> None:
        """Stop reading and close the connection (needed only when you stop early)."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "_close"):
            self.close()


def _segment(job: str) -> str:
    """A job id as one path segment (nothing in it can reach another route)."""
    if not isinstance(job, str) or not job:
        raise InputError(f"a job id is a non-empty string, got {job!r}")
    return quote(job, safe="")


def _file(source: str | os.PathLike, fmt: str | None) -> tuple[Path, str]:
    """The file to upload and its format, checked before anything is sent."""
    path = Path(source)
    if str(source) == "-":
        raise InputError("- is stdin only on the command line: pass sys.stdin.buffer")
    if fmt is None and path.is_file():
        try:
            fmt = format_of(path)
        except InputError:
            raise InputError(
                f"{path}: cannot tell the format from the name; pass format= ({', '.join(FORMATS)})"
            ) from None
    found = resolve_sources([str(path)], fmt)[0]  # missing, binary, a JSON array: refused here
    if found.format == "folder":
        raise InputError(f"{path}: a folder; submit sends one file (or an iterable of records)")
    return path, found.format


def _json_lines(records: Iterable[Mapping | str], text_field: str) -> Iterator[bytes]:
    """Records as JSON Lines, in chunks of about ``BLOCK_BYTES``; a record that is neither a
    dict nor a text stops the upload with the record's number."""
    pending, size = [], 0
    for n, record in enumerate(records, 1):
        if isinstance(record, str):
            record = {text_field: record}
        elif not isinstance(record, Mapping):
            raise InputError(f"record {n}: expected a dict or a str, got {type(record).__name__}")
        try:
            line = json.dumps(record, ensure_ascii=False).encode() + b"\n"
        except (TypeError, ValueError) as exc:
            raise InputError(f"record {n}: not JSON: {exc}") from None
        pending.append(line)
        size += len(line)
        if size >= BLOCK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)
