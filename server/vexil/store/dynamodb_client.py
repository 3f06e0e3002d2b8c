"""The aioboto3 client for vexil's table: how it is configured and how its errors are translated.

Everything the AWS SDK can raise is turned into a `vexil.errors` value here, in one place, so the
store and the operator commands never leak a botocore exception to an API adapter: connection,
timeout and throttling problems become `Unavailable` (retryable, nothing was written); requests
DynamoDB refuses as malformed become `InvalidArgument`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypedDict

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

from vexil.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    VexilError,
)

DEFAULT_REGION = "ap-northeast-1"

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)
"""Codes meaning "try again later": the request was not applied."""

VALIDATION_CODES = frozenset({"ValidationException", "SerializationException"})

ALREADY_EXISTS_CODES = frozenset({"TableAlreadyExistsException"})
"""A restore's new table exists already."""

NOT_FOUND_CODES = frozenset({"BackupNotFoundException"})
"""A backup named by ARN that does not exist (a missing table has its own `TableNotFound`)."""

PRECONDITION_CODES = frozenset(
    {
        "TableInUseException",
        "BackupInUseException",
        "PointInTimeRecoveryUnavailableException",
        "ContinuousBackupsUnavailableException",
    }
)
"""What the table's or backup's state does not allow now (another operation on it, recovery off):
retrying at once finds the same."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Explicit AWS credentials; when absent the SDK's default chain (env, profile, role) is used."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key=***)"


class Where(TypedDict, total=False):
    """Where DynamoDB is, as the keyword arguments every entry point that opens a client takes
    (both stores, `create_table`, `describe_table`); one left out defaults as in `ClientSettings`."""

    region: str
    endpoint_url: str | None
    credentials: Credentials | None


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where and how to reach DynamoDB.

    Timeouts are short on purpose: a store that cannot answer within seconds should report
    `Unavailable` so the service keeps serving its last snapshot instead of hanging writers."""

    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    credentials: Credentials | None = None
    max_attempts: int = 3
    connect_timeout: float = 2.0
    read_timeout: float = 10.0
    max_pool_connections: int = 10
    on_open: Callable[[Any], None] | None = field(default=None, compare=False)
    """Called with each client opened (instrumentation: `vexil.observability.dynamodb`)."""


def new_session(settings: ClientSettings) -> aioboto3.Session:
    creds = settings.credentials
    if creds is None:
        return aioboto3.Session(region_name=settings.region)
    return aioboto3.Session(
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
        region_name=settings.region,
    )


async def open_client(settings: ClientSettings, stack: AsyncExitStack) -> Any:
    """Open one DynamoDB client whose lifetime is tied to `stack` (closed with it)."""
    config = AioConfig(
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=settings.max_pool_connections,
    )
    session = new_session(settings)
    with translated_errors("connecting to DynamoDB"):
        client = await stack.enter_async_context(
            session.client("dynamodb", endpoint_url=settings.endpoint_url, config=config)
        )
    if settings.on_open is not None:
        settings.on_open(client)
    return client


class OwnsClient:
    """One long-lived client on one table, opened by `start` and closed by `close`: the lifecycle
    both DynamoDB stores (flags, API keys) share."""

    name = "dynamodb"
    _stack: AsyncExitStack | None = None
    _client: Any = None

    def __init__(self, table: str, settings: ClientSettings) -> None:
        if not table:
            raise ValueError("table name is required")
        self.table = table
        self._settings = settings

    async def start(self) -> None:
        """Open the client (no request is sent); idempotent."""
        if self._client is not None:
            return
        stack = AsyncExitStack()
        try:
            self._client = await open_client(self._settings, stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    def _require_client(self) -> Any:
        if self._client is None:
            raise Unavailable(f"{self!r} is not started (call start() first)")
        return self._client


@asynccontextmanager
async def client_for(settings: ClientSettings) -> AsyncIterator[Any]:
    """A short-lived client for one-off operator commands (create/describe table)."""
    async with AsyncExitStack() as stack:
        yield await open_client(settings, stack)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


TABLE_NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "TableNotFoundException"})
"""How DynamoDB says the table is missing: most operations answer ResourceNotFoundException, the
backup and point-in-time recovery ones TableNotFoundException."""

CREDENTIALS_REFUSED_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "AccessDeniedException",
    }
)
"""How AWS refuses the caller's credentials (unknown key, bad signature, expired session) or
what they may do (IAM)."""


# The three below are UNAVAILABLE to a server's callers (for them the store is unavailable,
# whatever the cause); an operator's command reports each by its cause (`vexil.cli.exitcodes`).


class TableNotFound(Unavailable):
    """The table does not exist (in this region, at this endpoint): create it first."""


class NoCredentials(Unavailable):
    """The AWS SDK found no credentials: nothing was sent to DynamoDB."""


class CredentialsRefused(Unavailable):
    """AWS refused the credentials, or IAM does not let them do this."""


ANSWERS: tuple[tuple[frozenset[str], type[VexilError], str], ...] = (
    (VALIDATION_CODES, InvalidArgument, "DynamoDB refused the request while {doing}: {message}"),
    (
        TABLE_NOT_FOUND_CODES,
        TableNotFound,
        "DynamoDB table not found while {doing} (create it first): {message}",
    ),
    (
        CREDENTIALS_REFUSED_CODES,
        CredentialsRefused,
        "AWS refused the credentials while {doing} ({code}): {message}",
    ),
    (ALREADY_EXISTS_CODES, AlreadyExists, "DynamoDB refused {doing}: {message}"),
    (NOT_FOUND_CODES, NotFound, "DynamoDB found nothing while {doing}: {message}"),
    (PRECONDITION_CODES, FailedPrecondition, "DynamoDB refused {doing} ({code}): {message}"),
    (THROTTLING_CODES, Unavailable, "DynamoDB is throttling or busy while {doing} ({code}); retry later"),
)
"""DynamoDB error codes -> the vexil error an SDK failure becomes, and its message (first match)."""


def translate(exc: BaseException, doing: str) -> VexilError:
    """The vexil error for an SDK failure while `doing` something (used in the message)."""
    if isinstance(exc, VexilError):
        return exc
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        for codes, error, text in ANSWERS:
            if code in codes:
                return error(text.format(doing=doing, code=code, message=message))
        return Unavailable(f"DynamoDB failed while {doing} ({code}): {message}")
    if isinstance(exc, ParamValidationError):
        # The SDK's report spans lines ("Parameter validation failed:\n..."): a message is one line.
        return InvalidArgument(f"invalid DynamoDB request while {doing}: {' '.join(str(exc).split())}")
    if isinstance(exc, NoCredentialsError):
        return NoCredentials(
            f"no AWS credentials while {doing}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY (an emulator accepts any values)"
        )
    if isinstance(exc, BotoCoreError | OSError):
        return Unavailable(f"DynamoDB unreachable while {doing}: {type(exc).__name__}: {exc}")
    return Unavailable(f"DynamoDB failed while {doing}: {type(exc).__name__}: {exc}")


@contextmanager
def translated_errors(doing: str) -> Iterator[None]:
    """Re-raise SDK failures inside the block as vexil errors (see `translate`)."""
    try:
        yield
    except (ClientError, BotoCoreError, OSError) as exc:  # TimeoutError is an OSError
        raise translate(exc, doing) from exc
