from __future__ import annotations

from modelgrid.provenance.index import content_ref, index_array, index_rows, indexed_text
from modelgrid.provenance.minhash import MinHasher
from modelgrid.provenance.shingles import shingle_hashes

LABEL = "\n\n本内容由人工智能生成"


def test_rows_are_each_choices_bands_once_in_key_order() -> None:
    hasher = MinHasher()
    responses = [
        ("chatcmpl-a", ("The quick brown fox jumps over the lazy dog" + LABEL,), LABEL),
        # Two choices sharing most of their bands: a band they share is one row.
        ("chatcmpl-b", ("the same answer twice over", "the same answer twice over!"), ""),
        ("chatcmpl-c", ("",), ""),  # no words: no rows
        ("chatcmpl-d", ("敏捷的棕色狐狸跳过了懒狗", "a second choice, different"), ""),
    ]
    expected = {
        (key, content_ref(content_id))
        for content_id, choices, label in responses
        for choice in choices
        for key in hasher.bands_of(shingle_hashes(indexed_text(choice, label)))
    }
    rows = index_rows(hasher, responses)
    assert set(rows) == expected
    assert len(rows) == len(expected)  # distinct
    assert rows == sorted(rows)  # the primary key's order
    assert index_array(hasher, responses).shape == (len(rows), 2)


def test_no_responses_no_rows() -> None:
    assert index_rows(MinHasher(), []) == []
    assert index_array(MinHasher(), [("chatcmpl-x", ("",), "")]).shape == (0, 2)
