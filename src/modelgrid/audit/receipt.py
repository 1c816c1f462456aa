"""A receipt: one leaf, its inclusion proof and the signed checkpoint the proof leads to.

Whoever holds the log's public key checks a receipt without trusting the server that sent it:
the leaf's bytes hash to a leaf that the proof joins to the root the operator signed. The JSON
form is what the API returns; bytes travel as base64, the checkpoint as its note text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .checkpoint import InvalidCheckpoint, open_checkpoint
from .keys import PublicKey
from .merkle import leaf_hash, verify_inclusion
from .record import AuditRecord


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True, slots=True)
class Receipt:
    leaf: bytes  # the record's canonical bytes, exactly as hashed
    leaf_index: int
    tree_size: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str  # the signed note of a tree of tree_size leaves

    @property
    def record(self) -> AuditRecord:
        return AuditRecord.from_bytes(self.leaf)

    def to_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "content_id": record.content_id,
            "record": record.to_json(),
            "leaf": _b64(self.leaf),
            "leaf_hash": _b64(leaf_hash(self.leaf)),
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "inclusion_proof": [_b64(p) for p in self.inclusion_proof],
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Receipt:
        """Raises ValueError on anything but a receipt's JSON form."""
        try:
            return cls(
                leaf=base64.b64decode(data["leaf"], validate=True),
                leaf_index=_count(data["leaf_index"]),
                tree_size=_count(data["tree_size"]),
                inclusion_proof=tuple(
                    base64.b64decode(p, validate=True) for p in data["inclusion_proof"]
                ),
                checkpoint=str(data["checkpoint"]),
            )
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ValueError(f"not a receipt: {exc}") from None


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def receipt_problem(receipt: Receipt | Mapping[str, Any], public_key: PublicKey) -> str | None:
    """What is wrong with a receipt, checked with only the public key; None if nothing."""
    try:
        found = receipt if isinstance(receipt, Receipt) else Receipt.from_json(receipt)
        checkpoint = open_checkpoint(found.checkpoint, public_key)
    except (ValueError, InvalidCheckpoint) as exc:
        return str(exc)
    if checkpoint.size != found.tree_size:
        return f"the checkpoint is of {checkpoint.size} leaves, the proof of {found.tree_size}"
    if not verify_inclusion(
        leaf_hash(found.leaf),
        found.leaf_index,
        found.tree_size,
        found.inclusion_proof,
        checkpoint.root,
    ):
        return f"leaf {found.leaf_index} is not in the signed tree of {found.tree_size} leaves"
    try:
        AuditRecord.from_bytes(found.leaf)
    except (ValueError, KeyError, TypeError):
        return "the leaf is not an audit record"
    return None


def verify_receipt(receipt: Receipt | Mapping[str, Any], public_key: PublicKey) -> bool:
    return receipt_problem(receipt, public_key) is None
