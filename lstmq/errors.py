"""The exception tree. Its classes decide what happens next:

- ``UserError`` and subclasses: the input or configuration is wrong. Give up, print one line,
  exit non-zero; a task never retries these.
- ``TransientError`` and subclasses: a service hiccup (database, broker). Tasks retry with
  backoff; the CLI prints one line.

Every message is a single line meant for a person, with secrets already masked. Over HTTP an
error travels as a problem object whose type names its class (``urn:lstmq:job-not-found``,
``kind_of``), and ``lstmq.Client`` raises the same class again.
"""

import re


class LstmqError(Exception):
    """Base of every error lstmq raises on purpose."""

    exit_code = 1


class UserError(LstmqError):
    """Bad input or configuration: retrying cannot help."""

    exit_code = 2


class ConfigError(UserError):
    """A setting is malformed or points at something unusable."""


class InputError(UserError):
    """An input file or record cannot be used."""


class ModelNotFound(UserError):
    """No installed model has the requested name."""


class ArtifactError(UserError):
    """A model artifact is missing files, corrupt, or inconsistent."""


class SchemaOutdated(UserError):
    """The database schema is older (or newer) than this code expects."""


class JobNotFound(UserError):
    """No job has the given id."""


class PermissionDenied(UserError):
    """The caller may not do this (e.g. an API token submitting above its maximum priority)."""


class UnsafeReceiver(InputError):
    """A webhook URL lstmq refuses to send to (scheme, or a private or loopback address)."""


class ScheduleError(UserError):
    """A schedule definition is invalid (name, interval, cron, path)."""


class ScheduleNotFound(UserError):
    """No schedule has the given name."""


class NotInstalled(UserError):
    """An optional part of lstmq is not installed (e.g. pyarrow, for Parquet): its extra names it."""


class TransientError(LstmqError):
    """A temporary failure of a service; retry with backoff."""


class ServiceUnavailable(TransientError):
    """The database or broker cannot be reached."""


class LeaseLost(TransientError):
    """Another run took over this schedule's lease (this one ran past LEASE_S)."""


# Outcomes a command reports through its exit code, not failures of lstmq itself.


class JobIncomplete(LstmqError):
    """``--wait``/``--watch`` saw the job end with failed documents, or cancelled."""

    exit_code = 3


class SubmitCancelled(LstmqError):
    """The job was cancelled while its submit was still recording it (``lstmq cancel``, or the
    reconciler, which took the submit for dead): recording stops, the job stays cancelled."""

    exit_code = 3


class RunFailed(LstmqError):
    """``schedule run`` recorded a failed run (its history says why)."""


class WaitTimedOut(LstmqError, TimeoutError):
    """``Client.wait`` gave up before the job ended (the job goes on)."""


def kind_of(error: BaseException | type[BaseException]) -> str:
    """An error's name in API problems: ``JobNotFound`` -> ``job-not-found``."""
    cls = error if isinstance(error, type) else type(error)
    return re.sub(r"(?<!^)(?=[A-Z])", "-", cls.__name__).lower()
