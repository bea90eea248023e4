"""The client SDK: ``Client`` (async, on httpx) and ``SyncClient``."""

from sealroom.sdk.client import BasicSplitTrust, Client, Password
from sealroom.sdk.errors import KeyChangedError, KeyChangedWarning, SdkError, ServiceRefusedError
from sealroom.sdk.sync import SyncClient

__all__ = [
    "BasicSplitTrust",
    "Client",
    "KeyChangedError",
    "KeyChangedWarning",
    "Password",
    "SdkError",
    "ServiceRefusedError",
    "SyncClient",
]
