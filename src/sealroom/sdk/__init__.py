"""The client SDK: ``Client`` (async, on httpx) and ``SyncClient``."""

from sealroom.sdk.authorship import OpenedDocument, OpenedStream, Sealer
from sealroom.sdk.client import BasicSplitTrust, Client, Password
from sealroom.sdk.errors import (
    AuthorshipError,
    KeyChangedError,
    KeyChangedWarning,
    SdkError,
    ServiceRefusedError,
)
from sealroom.sdk.sync import SyncClient

__all__ = [
    "AuthorshipError",
    "BasicSplitTrust",
    "Client",
    "KeyChangedError",
    "KeyChangedWarning",
    "OpenedDocument",
    "OpenedStream",
    "Password",
    "SdkError",
    "Sealer",
    "ServiceRefusedError",
    "SyncClient",
]
