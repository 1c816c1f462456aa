"""An organisation's usage since a date and its credits left: one shape for the admin API and
the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .accounts import account_of_org
from .pricing import credits
from .storage.ledger import Ledger
from .storage.orgs import Organisation


async def usage_card(ledger: Ledger, org: Organisation, since: datetime) -> dict[str, Any]:
    """Committed entries only: a server flushes its own first."""
    account = account_of_org(org.id)
    totals = await ledger.totals(account, since)
    balance = await ledger.granted(account) - await ledger.spent(account)
    return {
        "object": "usage",
        "org": org.name,
        "plan": org.plan,
        "since": since.isoformat(),
        "requests": totals.requests,
        "tokens_in": totals.tokens_in,
        "tokens_cached": totals.tokens_cached,
        "tokens_out": totals.tokens_out,
        "list_price": credits(totals.list_price),
        "charged": credits(totals.charge),
        "balance": credits(balance),
    }
