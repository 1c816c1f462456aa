"""The watermark's pure core: green lists, the logits processor, the detector, the key file."""

from __future__ import annotations

import hashlib
import math
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from modelgrid.watermark import (
    KEY_FILE,
    GreenList,
    Watermark,
    WatermarkProcessor,
    detect,
    load_or_create_key,
    operator_key,
    p_value,
    parse_key,
    read_key,
    z_score,
)

KEY = bytes(range(32))
VOCAB = 49_152  # SmolLM2's
PINNED = {  # digests of one green list, by context width
    1: "25b4780549d231f17735e8487e8e712c78f67f5e4e421faf420c21fcfc5773b0",
    2: "3c984025b8ace9afd27a5490b717c664640309300827890b595c3185ec8936d0",
}


@pytest.fixture(scope="module")
def green() -> GreenList:
    return GreenList(KEY, VOCAB)


def green_sequence(green: GreenList, length: int, seed: int) -> list[int]:
    """Tokens each green after the one before: what an infinitely strong watermark writes."""
    rng = np.random.default_rng(seed)
    tokens = [int(t) for t in rng.integers(VOCAB, size=green.context_width)]
    while len(tokens) < length:
        ids = green.green_ids(tokens)
        tokens.append(int(ids[rng.integers(len(ids))]))
    return tokens


def test_every_context_has_exactly_gamma_of_the_vocabulary(green: GreenList) -> None:
    assert green.context_width == 2
    for context in ([0, 0], [0, 1], [1, 0], [17, 3], [VOCAB - 1, 2], [5, 9, 100]):
        ids = green.green_ids(context)
        assert len(ids) == len(np.unique(ids)) == VOCAB // 4
        assert ids.min() >= 0 and ids.max() < VOCAB
    assert green.gamma == 0.25


def test_each_id_is_green_in_about_gamma_of_contexts() -> None:
    small = GreenList(KEY, 2000)
    counts = np.zeros(2000, dtype=int)
    for context in range(2000):
        counts[small.green_ids([context, context * 7 % 2000])] += 1
    # Binomial(2000, 1/4) per id: mean 500, sd 19.4; 6 sd leaves no room for chance.
    assert abs(counts.mean() - 500) < 1e-9
    assert counts.min() > 500 - 6 * 19.4 and counts.max() < 500 + 6 * 19.4


def test_lists_of_different_contexts_overlap_as_chance_would(green: GreenList) -> None:
    sets = [set(green.green_ids([c, 5]).tolist()) for c in range(200)]
    overlaps = [len(sets[i] & sets[i + 1]) / VOCAB for i in range(199)]
    assert np.mean(overlaps) == pytest.approx(0.25**2, abs=0.01)


def test_the_key_decides_and_nothing_else() -> None:
    a, b = GreenList(KEY, VOCAB), GreenList(KEY, VOCAB)
    other = GreenList(bytes(32), VOCAB)
    assert np.array_equal(a.green_ids([42, 7]), b.green_ids([42, 7]))
    overlap = len(set(a.green_ids([42, 7]).tolist()) & set(other.green_ids([42, 7]).tolist()))
    assert overlap / VOCAB == pytest.approx(0.25**2, abs=0.005)  # as independent lists would


def test_the_lists_never_change_for_a_key(green: GreenList) -> None:
    # Text watermarked today must be detected after any upgrade: these are pinned.
    for width, digest in PINNED.items():
        ids = GreenList(KEY, VOCAB, context_width=width).green_ids([99, 1234])
        assert hashlib.sha256(np.sort(ids).astype("<i8").tobytes()).hexdigest() == digest


def test_is_green_agrees_with_green_ids(green: GreenList) -> None:
    rng = np.random.default_rng(1)
    contexts = rng.integers(0, VOCAB, size=(300, 2))
    tokens = rng.integers(0, VOCAB, size=300)
    flags = green.is_green(contexts, tokens)
    for context, token, flag in zip(contexts, tokens, flags, strict=True):
        assert flag == (token in set(green.green_ids(context).tolist()))


def test_contexts_depend_on_every_token_and_their_order() -> None:
    for width in (2, 3, 8):
        wide = GreenList(KEY, VOCAB, context_width=width)
        base = list(range(10, 10 + width))
        variants = [base, base[::-1], [3, *base[1:]], [*base[:-1], 3]]
        lists = [set(wide.green_ids(c).tolist()) for c in variants]
        assert all(lists[i] != lists[j] for i in range(4) for j in range(i + 1, 4))
        assert wide.green_ids([9, *base]).tolist() == wide.green_ids(base).tolist()
        with pytest.raises(ValueError):
            wide.green_ids(base[1:])
    with pytest.raises(ValueError):
        GreenList(KEY, VOCAB, context_width=9)


def test_processor_adds_delta_to_green_ids_only(green: GreenList) -> None:
    processor = WatermarkProcessor(green, 2.0)
    scores = np.linspace(-5, 5, VOCAB, dtype=np.single)
    before = scores.copy()
    out = processor(np.array([3, 1, 7], dtype=np.intc), scores)
    assert out is scores and out.dtype == np.single
    mask = np.zeros(VOCAB, dtype=bool)
    mask[green.green_ids([1, 7])] = True
    assert np.allclose(out[mask], before[mask] + 2.0)
    assert np.array_equal(out[~mask], before[~mask])


def test_processor_leaves_logits_alone_without_a_context() -> None:
    processor = WatermarkProcessor(GreenList(KEY, VOCAB), 2.0)
    scores = np.zeros(VOCAB, dtype=np.single)
    assert not processor(np.array([5], dtype=np.intc), scores).any()


def test_all_green_text_is_detected(green: GreenList) -> None:
    result = detect(green, green_sequence(green, 202, seed=3))
    assert result.tokens_scored == result.green_tokens == 200
    assert result.z_score == pytest.approx(150 / math.sqrt(200 * 0.25 * 0.75))
    assert result.watermarked and result.p_value is not None and result.p_value < 1e-100


def test_a_short_watermarked_text_is_detected(green: GreenList) -> None:
    # 25 all-green tokens: z = 18.75 / 2.17 = 8.7; the design's "usable from about 25".
    assert detect(green, green_sequence(green, 27, seed=4)).watermarked


def test_random_tokens_score_as_chance(green: GreenList) -> None:
    rng = np.random.default_rng(5)
    zs = [detect(green, rng.integers(0, VOCAB, 200).tolist()).z_score for _ in range(300)]
    values = np.array(zs, dtype=float)
    assert abs(values.mean()) < 0.25 and 0.8 < values.std() < 1.2
    assert values.max() < 4


def test_short_input_gives_no_score(green: GreenList) -> None:
    # Each scored token needs its two tokens of context; the last: one pair, repeated.
    for tokens in ([], [5], [5, 6], [5, 6, 7], [5, 5, 5, 5, 5]):
        result = detect(green, tokens)
        assert result.z_score is None and result.p_value is None and not result.watermarked
    assert detect(green, [5, 6, 7, 8]).tokens_scored == 2
    assert detect(green, [5, 6, 7, 8]).z_score is not None


def test_repeated_pairs_count_once(green: GreenList) -> None:
    phrase = green_sequence(green, 10, seed=6)
    once = detect(green, phrase)
    repeated = detect(green, phrase * 30)
    assert once.tokens_scored == once.green_tokens == 8
    # The phrase's 8 pairs and the 2 that span the join between repeats.
    assert repeated.tokens_scored == 10 and repeated.green_tokens >= 8


def test_z_score_and_p_value() -> None:
    assert z_score(50, 200, 0.25) == 0
    assert z_score(80, 200, 0.25) == pytest.approx(30 / math.sqrt(37.5))
    assert p_value(0) == 0.5
    assert p_value(4) == pytest.approx(3.167e-5, rel=1e-3)


def test_result_dict_has_the_documented_fields(green: GreenList) -> None:
    result = Watermark(KEY).detect(green, green_sequence(green, 60, seed=7)).as_dict()
    assert set(result) == {
        "z_score",
        "p_value",
        "tokens_scored",
        "green_tokens",
        "watermarked",
        "threshold",
    }
    assert result["watermarked"] is True and result["threshold"] == 4.0


def test_watermark_never_shows_its_key() -> None:
    assert KEY.hex() not in repr(Watermark(KEY)) and str(KEY) not in repr(Watermark(KEY))


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = load_or_create_key(data_dir)
    path = data_dir / KEY_FILE
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(data_dir) == key == read_key(path)
    assert load_or_create_key(tmp_path / "other") != key
    assert os.listdir(data_dir) == [KEY_FILE]


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        keys.append(load_or_create_key(tmp_path))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and os.listdir(tmp_path) == [KEY_FILE]


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"short")
    with pytest.raises(ValueError, match="5 bytes"):
        load_or_create_key(tmp_path)


def test_a_configured_key_wins(tmp_path: Path) -> None:
    assert operator_key(tmp_path, KEY.hex()) == KEY
    assert not (tmp_path / KEY_FILE).exists()
    assert parse_key(f"  {KEY.hex().upper()}\n") == KEY
    for bad in ("abc", "zz" * 32, "00" * 31):
        with pytest.raises(ValueError, match="64 hexadecimal"):
            parse_key(bad)
