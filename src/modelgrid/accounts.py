"""Accounts: whom limits, quotas, credits and ledger entries count against.

An organisation's keys share its account, as OpenAI counts; a key outside any organisation
(the operator's own, or one made without ``--org``) is an account of its own.
"""

from __future__ import annotations

from .storage.keys import KeyRecord


def account_of_org(org_id: str) -> str:
    return f"org:{org_id}"


def account_of(caller: KeyRecord) -> str:
    return account_of_org(caller.org_id) if caller.org_id else f"key:{caller.id}"
