"""Prices: integer micro-credits, rounded up once, off-peak windows."""

from __future__ import annotations

from datetime import UTC, datetime

from modelgrid.pricing import Cost, OffPeak, Price, charge, cost, list_price, micro
from modelgrid.settings import PriceSettings

# DeepSeek-V3's list prices in 2025, per million tokens: 0.27 input, 0.07 cached, 1.10 output.
V3 = Price.from_settings(
    PriceSettings(input=0.27, cached_input=0.07, output=1.10, off_peak_discount=0.5)
)


def test_prices_become_micro_credits_per_million_tokens() -> None:
    assert (V3.input, V3.cached_input, V3.output) == (270_000, 70_000, 1_100_000)
    assert V3.off_peak_discount_bp == 5_000
    assert Price.from_settings(PriceSettings(input=2.0)).cached_input == micro(2.0)
    assert Price().free and not V3.free


def test_a_million_tokens_cost_the_list_price_exactly() -> None:
    assert list_price(V3, 1_000_000, 0, 0) == micro(0.27)
    assert list_price(V3, 1_000_000, 1_000_000, 1_000_000) == micro(0.07 + 1.10)
    assert charge(V3, 0, 0, 1_000_000) == micro(1.10)


def test_charges_round_up_once_per_request() -> None:
    # 1,000 prompt tokens and 500 completion tokens: 270 + 550 micro-credits exactly.
    assert charge(V3, 1_000, 0, 500) == 820
    # One token: 0.27 micro-credits, charged as 1.
    assert charge(V3, 1, 0, 0) == 1
    assert charge(V3, 0, 0, 0) == 0


def test_cached_tokens_are_cheaper_and_never_more_than_the_prompt() -> None:
    assert charge(V3, 1_000, 400, 0) == -(-(600 * 270_000 + 400 * 70_000) // 1_000_000)
    assert charge(V3, 10, 99, 0) == charge(V3, 10, 10, 0)


def test_multiplier_and_off_peak_discount() -> None:
    full = charge(V3, 1_000_000, 0, 1_000_000)
    assert charge(V3, 1_000_000, 0, 1_000_000, multiplier=1.5) == full * 3 // 2
    assert charge(V3, 1_000_000, 0, 1_000_000, off_peak=True) == full // 2
    assert charge(V3, 1_000_000, 0, 1_000_000, multiplier=0.0) == 0
    assert list_price(V3, 1_000_000, 0, 1_000_000) == full  # list price ignores both


def test_a_reservation_always_covers_the_usage() -> None:
    # The reservation prices every prompt token as uncached and assumes max_tokens.
    for tokens_in in (1, 7, 333, 10_001):
        for cached in (0, tokens_in // 2, tokens_in):
            for out, most in ((0, 1), (5, 5), (17, 256)):
                for peak in (False, True):
                    reserved = charge(V3, tokens_in, 0, most, 1.3, peak)
                    assert charge(V3, tokens_in, cached, out, 1.3, peak) <= reserved


def test_off_peak_windows_may_wrap_midnight() -> None:
    deepseek = OffPeak.parse("16:30", "00:30")
    assert deepseek is not None

    def at(hour: int, minute: int) -> datetime:
        return datetime(2026, 11, 27, hour, minute, tzinfo=UTC)

    assert deepseek.contains(at(16, 30)) and deepseek.contains(at(23, 59))
    assert deepseek.contains(at(0, 0)) and deepseek.contains(at(0, 29))
    assert not deepseek.contains(at(0, 30)) and not deepseek.contains(at(16, 29))
    daytime = OffPeak.parse("09:00", "17:00")
    assert daytime is not None and daytime.contains(at(12, 0)) and not daytime.contains(at(17, 0))
    assert OffPeak.parse("", "") is None


def test_cost_counts_tokens_and_a_share_of_the_deployment_time() -> None:
    upstream = Cost(input=micro(0.14), output=micro(0.28))  # a provider's prices per million
    assert cost(upstream, 1_000_000, 1_000_000, 5.0, 1) == micro(0.42)
    gpu = Cost(per_hour=micro(2.0))  # DeepSeek's assumption: $2 per H800 hour
    assert cost(gpu, 0, 0, 3600.0, 1) == micro(2.0)
    assert cost(gpu, 0, 0, 36.0, 4) == micro(2.0) // 100 // 4  # 1% of the hour, shared by 4
    assert cost(gpu, 0, 0, 0.001, 1) == 1  # rounded up, never free
    assert cost(Cost(), 10, 10, 10.0, 1) == 0
