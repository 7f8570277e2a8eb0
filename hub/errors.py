"""The hub's exception tree; each error knows the HTTP status it answers with.

    HubError                       500 unless a subclass says otherwise
    ├── RequestError               400: the request itself is wrong
    │   └── PayloadTooLarge        413
    ├── RelayError                 502: a command could not be relayed
    │   ├── DeviceNotFound         404: unknown or offline speaker
    │   ├── CommandRefused         403/400/409: the speaker said no (its ack)
    │   ├── BrokerUnavailable      503: the hub has no broker connection
    │   └── CommandTimeout         504: the speaker did not answer in time
    ├── AccountError               bad account data (CLI and token endpoint)
    ├── ProvisioningError          a device or key could not be provisioned
    ├── CatalogError               a URI that is malformed or names nothing
    ├── OfflineError               400: an offline download or licence request is wrong
    │   ├── OfflineUnauthorized    401: a speaker's request is not signed by its key
    │   ├── OfflineForbidden       403: a limit, or someone else's device or licence
    │   ├── OfflineNotFound        404: no such speaker or licence
    │   └── OfflineConflict        409: keys missing, or other keys registered
    ├── DatabaseError              hub.db unusable (newer schema, unreadable)
    └── BrokerError                a broker could not start, stop or reload

``reason`` carries Spotify's PlayerError reason where one applies.
"""

from __future__ import annotations


class HubError(Exception):
    status = 500
    reason: str | None = None


class RequestError(HubError):
    status = 400


class PayloadTooLarge(RequestError):  # noqa: N818 - named for the HTTP status
    status = 413


class RelayError(HubError):
    status = 502


class DeviceNotFound(RelayError):  # noqa: N818 - named for what the client sees
    status = 404

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class BrokerUnavailable(RelayError):  # noqa: N818
    status = 503


class CommandTimeout(RelayError):  # noqa: N818
    status = 504


class AccountError(HubError):
    """A refused account operation; the message is safe to show the user."""

    status = 400


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


class DatabaseError(HubError):
    """hub.db cannot be used; the message says why and what to do."""
