"""``modelgrid audit verify`` and ``modelgrid audit proof``, as an operator runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from modelgrid.audit.keys import AuditKeys, PublicKey
from modelgrid.audit.receipt import verify_receipt
from modelgrid.cli import main
from modelgrid.storage.database import Database
from modelgrid.storage.tables import audit_leaves

from .logs import ORIGIN, filled, sample

pytestmark = pytest.mark.anyio


async def invoke(data_dir: Path, db: Database, *args: str) -> tuple[int, str, str]:
    """The command runs its own event loop, so it runs in a thread of its own."""
    env = {"MODELGRID_DATA_DIR": str(data_dir), "MODELGRID_DATABASE_URL": db.url}
    result = await asyncio.to_thread(CliRunner().invoke, main, ["audit", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


async def test_verify_and_proof_on_a_sound_log_then_a_tampered_one(
    db: Database, tmp_path: Path
) -> None:
    keys = AuditKeys.load_or_create(tmp_path)
    records = await filled(db, tmp_path / "audit-journal", keys)

    code, out, _ = await invoke(tmp_path, db, "verify")
    assert code == 0
    assert out.count("\n") == 1 and out.startswith("audit log verified: 40 leaves")
    code, out, _ = await invoke(tmp_path, db, "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True

    code, out, _ = await invoke(tmp_path, db, "proof", records[3].content_id)
    assert code == 0
    receipt = json.loads(out)
    assert receipt["content_id"] == records[3].content_id
    assert verify_receipt(receipt, PublicKey(ORIGIN, keys.public_raw))
    code, _, err = await invoke(tmp_path, db, "proof", "chatcmpl-unknown")
    assert code != 0 and "chatcmpl-unknown" in err

    changed = sample(99).to_bytes()
    async with db.engine.begin() as conn:
        await conn.execute(
            audit_leaves.update().where(audit_leaves.c.leaf_index == 21).values(record=changed)
        )
    code, out, err = await invoke(tmp_path, db, "verify")
    assert code != 0 and out == ""
    assert f"leaf 21 ({records[21].content_id})" in err and "Traceback" not in err
    code, out, _ = await invoke(tmp_path, db, "verify", "--json")
    assert code != 0 and json.loads(out)["problem"]["leaf_index"] == 21


async def test_verify_with_another_key_or_none_fails(db: Database, tmp_path: Path) -> None:
    await filled(db, tmp_path / "audit-journal", AuditKeys.load_or_create(tmp_path / "real"))
    code, _, err = await invoke(tmp_path / "empty", db, "verify")
    assert code != 0 and "no audit keys" in err
    AuditKeys.load_or_create(tmp_path / "other")
    code, _, err = await invoke(tmp_path / "other", db, "verify")
    assert code != 0 and "checkpoint 7 is forged" in err
    code, _, err = await invoke(tmp_path / "real", db, "verify", "--origin", "elsewhere.example")
    assert code != 0 and "forged" in err
    async with db.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(audit_leaves))).scalar()
