"""The change feed's cursor: ids read past it, the gaps PostgreSQL can leave, and their end."""

from __future__ import annotations

from modelgrid.changes import MAX_HOLES, Cursor, advance


def test_reading_in_order_moves_the_cursor_and_leaves_no_hole() -> None:
    cursor = advance(Cursor(4), [5, 6, 7], now=10.0, hole_seconds=60)
    assert cursor == Cursor(7, {})
    assert advance(cursor, [], now=11.0, hole_seconds=60) == Cursor(7, {})


def test_an_id_skipped_over_is_a_hole_until_it_appears() -> None:
    """A transaction that took id 6 commits after the one that took 7: 6 is read later."""
    cursor = advance(Cursor(5), [7, 9], now=10.0, hole_seconds=60)
    assert cursor == Cursor(9, {6: 10.0, 8: 10.0})
    cursor = advance(cursor, [6], now=10.5, hole_seconds=60)
    assert cursor == Cursor(9, {8: 10.0})
    cursor = advance(cursor, [8, 10], now=11.0, hole_seconds=60)
    assert cursor == Cursor(10, {})


def test_a_hole_is_given_up_after_hole_seconds() -> None:
    """A rolled-back transaction's id never appears."""
    cursor = advance(Cursor(0), [2], now=0.0, hole_seconds=60)
    assert cursor.holes == {1: 0.0}
    assert advance(cursor, [], now=59.0, hole_seconds=60).holes == {1: 0.0}
    assert advance(cursor, [], now=60.0, hole_seconds=60).holes == {}


def test_holes_are_bounded_and_the_newest_kept() -> None:
    cursor = advance(Cursor(0), [5 * MAX_HOLES], now=0.0, hole_seconds=60)
    assert len(cursor.holes) == MAX_HOLES
    assert min(cursor.holes) == 4 * MAX_HOLES and max(cursor.holes) == 5 * MAX_HOLES - 1
    cursor = advance(cursor, [5 * MAX_HOLES + 3], now=1.0, hole_seconds=60)
    assert len(cursor.holes) == MAX_HOLES
    assert max(cursor.holes) == 5 * MAX_HOLES + 2
