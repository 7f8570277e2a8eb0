"""Every error the hub raises, in one tree; each knows the HTTP status it answers with.

    HubError                       500 unless a subclass says otherwise
    ├── RequestError               400: the request itself is wrong
    │   └── PayloadTooLarge        413
    ├── RateLimited                429: over a category's limit (with Retry-After)
    ├── RelayError                 502: a command could not be relayed
    │   ├── DeviceNotFound         404: unknown or offline speaker
    │   ├── CommandRefused         403/400/409/413: the speaker said no (its ack)
    │   ├── BrokerUnavailable      503: the hub has no broker connection
    │   └── CommandTimeout         504: the speaker did not answer in time
    ├── AccountError               400: bad account data (CLI and token endpoint)
    │   ├── TokenRejected          401: unknown, revoked, expired or not an access token
    │   ├── GrantRefused           400: a refresh token that cannot be exchanged
    │   └── InvalidScope           400: a scope the hub does not know
    ├── ProvisioningError          400: a device or key could not be provisioned
    ├── CatalogError               400: a URI or id that is malformed or names nothing
    │   ├── NotFound               404
    │   └── Forbidden              403
    ├── OfflineError               400: an offline download or licence request is wrong
    │   ├── OfflineUnauthorized    401: a speaker's request is not signed by its key
    │   ├── OfflineForbidden       403: a limit, or someone else's device or licence
    │   ├── OfflineNotFound        404: no such speaker or licence
    │   └── OfflineConflict        409: keys missing, or other keys registered
    ├── GroupError                 400: a group's name or members are wrong
    │   ├── GroupForbidden         403: someone else's group
    │   ├── GroupNotFound          404: no such group, or an unknown speaker in it
    │   └── GroupConflict          409: a speaker offline, in another group, or in a group
    ├── ReleaseRefused             400: a wheel, rollout or halt the hub will not do
    │   ├── ReleaseNotFound        404: no such release
    │   └── ReleaseConflict        409: that version is already added
    ├── IngestError                a file that cannot be ingested (the file is skipped)
    ├── IngestBusy                 409: another ingest is still running
    ├── HistoryFileError           a listening-history export that cannot be imported
    ├── DatabaseError              hub.db unusable (newer schema, unreadable)
    ├── BrokerError                a broker could not start, stop or reload
    └── CliError                   a command-line failure, reported in one line (exit 2)

``reason`` carries Spotify's PlayerError reason where one applies.  Messages are
written for the person who sees them: a listener, an operator or a speaker's log.
"""

from __future__ import annotations

from connect_protocol.errors import ErrorCode
from connect_protocol.messages import Ack


class HubError(Exception):
    status = 500
    reason: str | None = None


class RequestError(HubError):
    status = 400


class PayloadTooLarge(RequestError):  # noqa: N818 - named for the HTTP status
    status = 413


class RateLimited(HubError):  # noqa: N818 - named for what the client sees
    """A request over its category's limit: 429 with ``Retry-After``."""

    status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("API rate limit exceeded")
        self.retry_after_s = retry_after_s


class RelayError(HubError):
    status = 502


class DeviceNotFound(RelayError):  # noqa: N818 - named for what the client sees
    status = 404

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


#: How a speaker's refusal reads to a Web API client: HTTP status and Spotify reason.
REFUSALS: dict[ErrorCode, tuple[int, str | None]] = {
    ErrorCode.NO_TRACK: (403, "NOT_PLAYING_TRACK"),
    ErrorCode.CONFLICT: (409, None),
    ErrorCode.INVALID_VALUE: (400, None),
    ErrorCode.TOO_LARGE: (413, None),
    ErrorCode.RATE_LIMITED: (429, None),
}


class CommandRefused(RelayError):  # noqa: N818 - named for what the client sees
    """The speaker answered with an error ack."""

    def __init__(self, ack: Ack) -> None:
        assert ack.error is not None
        super().__init__(ack.message or ack.error.value)
        self.ack = ack
        self.code = ack.error
        self.status, self.reason = REFUSALS.get(ack.error, (400, None))


class BrokerUnavailable(RelayError):  # noqa: N818
    status = 503


class CommandTimeout(RelayError):  # noqa: N818
    status = 504


class AccountError(HubError):
    """A refused account operation; the message is safe to show the user."""

    status = 400


class TokenRejected(AccountError):  # noqa: N818 - named for what the client sees
    """A bearer token that is unknown, revoked, expired or not an access token."""

    status = 401


class GrantRefused(AccountError):  # noqa: N818 - OAuth's invalid_grant
    """A refresh token that cannot be exchanged (OAuth's ``invalid_grant``)."""


class InvalidScope(AccountError):  # noqa: N818 - OAuth's invalid_scope
    """A requested scope the hub does not know (OAuth's ``invalid_scope``)."""


class ProvisioningError(HubError):
    status = 400


class CatalogError(HubError):
    status = 400


class NotFound(CatalogError):  # noqa: N818 - named for the HTTP status
    status = 404


class Forbidden(CatalogError):  # noqa: N818 - named for the HTTP status
    status = 403


class OfflineError(HubError):
    """Offline downloads and licences; the message says what to do."""

    status = 400


class OfflineUnauthorized(OfflineError):  # noqa: N818 - named for the HTTP status
    status = 401


class OfflineForbidden(OfflineError):  # noqa: N818 - named for the HTTP status
    status = 403


class OfflineNotFound(OfflineError):  # noqa: N818 - named for the HTTP status
    status = 404


class OfflineConflict(OfflineError):  # noqa: N818 - named for the HTTP status
    status = 409


class GroupError(HubError):
    """A multiroom group that cannot be made, changed or played to as asked."""

    status = 400


class GroupForbidden(GroupError):  # noqa: N818 - named for the HTTP status
    status = 403


class GroupNotFound(GroupError):  # noqa: N818 - named for the HTTP status
    status = 404


class GroupConflict(GroupError):  # noqa: N818 - named for the HTTP status
    status = 409


class ReleaseRefused(HubError):  # noqa: N818 - what the operator is told
    """A release the hub will not add, roll out or halt; nothing was changed."""

    status = 400


class ReleaseNotFound(ReleaseRefused):
    status = 404


class ReleaseConflict(ReleaseRefused):
    status = 409


class IngestError(HubError):
    """A file that cannot be ingested; the message is the one-line reason shown next
    to the file's name (``truncated: 132295 of 220500 frames decoded``)."""


class IngestBusy(HubError):  # noqa: N818 - what the operator is told
    """Another ingest is still running."""

    status = 409


class HistoryFileError(HubError):
    """A listening-history export that cannot be imported: the message names the file
    and the row (1-based), and nothing of that import was written."""


class DatabaseError(HubError):
    """hub.db cannot be used; the message says why and what to do."""


class BrokerError(HubError):
    """A broker could not be started, stopped or reloaded."""


class CliError(HubError):
    """A failure to report in one line, with exit status 2."""
