"""The embedded broker (``filesystem://``): kombu's filesystem transport, with whole messages.

kombu writes a message file in place (create, then write) and a consumer moves away any file
whose name says it is a message, locked or not: a consumer polling every few milliseconds took
files still empty, failed to parse them and lost them. Here a message is written under a name
consumers skip and renamed into the queue once complete (a rename is atomic within a folder),
and a file that still does not parse (written by something else) is logged and dropped
instead of stopping the consumer.
"""

from __future__ import annotations

import logging
import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

log = logging.getLogger("lstmq.broker")


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # kombu's name, so messages keep their order. The temporary name leaves out ".QUEUE.msg":
        # consumers take any name that contains it (kombu 5.6 matches a substring).
        stem = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}"
        final = os.path.join(self.data_folder_out, f"{stem}.{queue}.msg")
        temporary = os.path.join(self.data_folder_out, f".{stem}.part")
        try:
            with open(temporary, "wb") as out:
                out.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        while True:
            try:
                return super()._get(queue)
            except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError: that file is gone now
                log.error("malformed message file dropped from %s (%s: %s)", queue, type(exc).__name__, exc)


class Transport(filesystem.Transport):
    Channel = Channel
