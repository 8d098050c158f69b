"""The S3 workspace's errors and how a backend exception is classified: transient (retry it), a failed
precondition (someone else wrote first), or a credentials problem (say which source was used, never the secret)."""

from __future__ import annotations

import errno
import os

from misen.errors import MisenError

__all__ = [
    "CredentialsError",
    "S3WorkspaceError",
    "StorageUnavailableError",
    "credential_source",
    "is_credentials_error",
    "is_precondition_failed",
    "is_transient",
]


class S3WorkspaceError(MisenError):
    """An operation on the object store failed for good."""


class StorageUnavailableError(S3WorkspaceError):
    """The store kept failing with transient errors (connection resets, 5xx, throttling) after every retry."""


class CredentialsError(S3WorkspaceError):
    """The store refused the credentials; the message names where they came from, never their value."""


# Exception class names (anywhere in the MRO) that mean "try again": botocore, aiohttp, urllib3, fsspec.
_TRANSIENT_NAMES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "HTTPClientError",
        "ServerDisconnectedError",
        "ClientConnectionError",
        "ClientOSError",
        "ClientPayloadError",
        "IncompleteRead",
        "ResponseParserError",
        "FSTimeoutError",
        "ProtocolError",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "RequestLimitExceeded",
        "TooManyRequests",
        "500",
        "502",
        "503",
        "504",
    }
)
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
    }
)
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_CREDENTIAL_NAMES = frozenset(
    {
        "NoCredentialsError",
        "PartialCredentialsError",
        "ProfileNotFound",
        "CredentialRetrievalError",
        "TokenRetrievalError",
        "SSOTokenLoadError",
        "UnauthorizedSSOTokenError",
        "InvalidConfigError",
    }
)
_CREDENTIAL_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "403"}
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 10:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def _response(exc: BaseException) -> tuple[str, int]:
    """(error code, HTTP status) of a botocore ``ClientError``-like exception; ``("", 0)`` otherwise."""
    resp = getattr(exc, "response", None)
    if not isinstance(resp, dict):
        status = getattr(exc, "code", None) or getattr(exc, "status", None)
        return "", status if isinstance(status, int) else 0
    code = str((resp.get("Error") or {}).get("Code", ""))
    status = (resp.get("ResponseMetadata") or {}).get("HTTPStatusCode", 0)
    return code, int(status or 0)


def is_precondition_failed(exc: BaseException) -> bool:
    """A conditional write lost: 412 PreconditionFailed, or 409 ConditionalRequestConflict under contention."""
    for e in _chain(exc):
        if isinstance(e, PreconditionFailed):
            return True
        code, status = _response(e)
        if code in _PRECONDITION_CODES or status in (409, 412):
            return True
    return False


def is_credentials_error(exc: BaseException) -> bool:
    for e in _chain(exc):
        if _names(e) & _CREDENTIAL_NAMES:
            return True
        code, status = _response(e)
        if code in _CREDENTIAL_CODES or status == 403:
            return True
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether retrying might help: connection trouble, timeouts, 5xx and throttling answers."""
    for e in _chain(exc):
        if isinstance(e, (FileNotFoundError, FileExistsError, PermissionError, PreconditionFailed)):
            return False
        if isinstance(e, (ConnectionError, TimeoutError)) or _names(e) & _TRANSIENT_NAMES:
            return True
        if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNOS:
            return True
        code, status = _response(e)
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return True
    return False


class PreconditionFailed(Exception):
    """Raised by the local and memory back ends when a conditional write or delete finds another version."""


def credential_source(protocol: str, profile: str) -> str:
    """Where the credentials in use come from, in words: a variable or profile name, never a value."""
    if protocol in ("gs", "gcs"):
        if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            return "the key file named by GOOGLE_APPLICATION_CREDENTIALS"
        return "Google's default credentials (gcloud auth application-default login, or the instance account)"
    if profile:
        return f"AWS profile {profile!r} (workspace setting `profile`)"
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        extra = " and AWS_SESSION_TOKEN" if os.environ.get("AWS_SESSION_TOKEN") else ""
        return f"the environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY{extra}"
    if os.environ.get("AWS_PROFILE"):
        return f"AWS profile {os.environ['AWS_PROFILE']!r} (from the AWS_PROFILE variable)"
    if os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return "the web identity token named by AWS_WEB_IDENTITY_TOKEN_FILE"
    return (
        "the default AWS credential chain (~/.aws/credentials [default], then the instance or container role)"
    )


def summary(exc: BaseException) -> str:
    """One line about an exception, taken from the most specific cause that has a message."""
    for e in _chain(exc):
        code, status = _response(e)
        if code:
            return f"{code} (HTTP {status})" if status else code
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
