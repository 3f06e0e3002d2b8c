"""A client that goes away while its answer is being sent is not a server error.

grpc.aio logs at ERROR, with a traceback, every call whose last send failed before the server
noticed the client had closed: "ExecuteBatchError raised in core by servicer method". It is a
race inside grpc (the send fails before the close is read), and it is common on streams whose
messages fill the transport's window, such as SyncFlags' whole documents to a client that
stopped reading and was then cancelled: fifty such streams logged fifty tracebacks. Operators
read ERROR lines as faults (the daily log check), so these are logged at DEBUG instead.
Only failures of a message send are: any other ExecuteBatchError stays an ERROR.
"""

from __future__ import annotations

import logging

GRPC_LOGGER = "grpc._cython.cygrpc"
_MESSAGE = "ExecuteBatchError raised in core by servicer method"
_SEND = "SendMessageOperation"

log = logging.getLogger(__name__)


class ClientGone(logging.Filter):
    """Drops grpc's ERROR for a failed send to a client that went away, logging it at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(_MESSAGE)):
            return True
        error = record.exc_info[1] if record.exc_info else None
        if error is None or _SEND not in str(error):
            return True
        log.debug("a call ended while its answer was being sent (the client went away): %s", record.args)
        return False


_FILTER = ClientGone()


def install() -> None:
    """Once per process (a second call changes nothing)."""
    logger = logging.getLogger(GRPC_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
