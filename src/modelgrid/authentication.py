"""Who is calling: the bearer key checked against the key store, and the admin roles."""

from __future__ import annotations

from .errors import AuthenticationFailed, PermissionDenied
from .keys import parse_bearer
from .storage.keys import KeyRecord, KeyStore
from .trace import Trace


class Authenticator:
    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    async def authenticate(self, authorization: str | None, trace: Trace) -> KeyRecord:
        key = parse_bearer(authorization)
        if key is None:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
                code="missing_api_key",
            )
        record = await self.keys.verify(key)
        if record is None:
            raise AuthenticationFailed(f"Incorrect API key provided: {_masked(key)}.")
        trace.key_prefix = record.prefix
        return record

    async def authenticate_admin(
        self, authorization: str | None, trace: Trace, org_admin_too: bool = False
    ) -> KeyRecord:
        """The operator's admin key; with ``org_admin_too``, an organisation's admin key as
        well (the handler then keeps it to its own organisation)."""
        record = await self.authenticate(authorization, trace)
        if record.role == "admin" or (
            org_admin_too and record.role == "org_admin" and record.org_id is not None
        ):
            return record
        raise PermissionDenied("This endpoint needs an admin key.")


def _masked(key: str) -> str:
    return key[:6] + "*" * 4 + key[-4:] if len(key) > 12 else "*" * len(key)
