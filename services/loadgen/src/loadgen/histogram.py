"""HDR histograms of latencies in microseconds: record, summarise, serialise, add."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: anything slower is clamped
SIGNIFICANT_DIGITS = 3
PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_seconds(histogram: HdrHistogram, seconds: float) -> None:
    """Record a duration; negatives (clock jitter) count as the lowest value."""
    micros = round(seconds * 1_000_000)
    histogram.record_value(min(max(micros, LOWEST_US), HIGHEST_US))


def summary_ms(histogram: HdrHistogram) -> dict[str, float | None]:
    """p50/p90/p99/p99.9/max in milliseconds; None for an empty histogram."""
    empty = histogram.get_total_count() == 0
    summary: dict[str, float | None] = {
        key: None if empty else histogram.get_value_at_percentile(pct) / 1000.0
        for key, pct in PERCENTILES.items()
    }
    summary["max"] = None if empty else histogram.get_max_value() / 1000.0
    return summary


def encode(histogram: HdrHistogram) -> str:
    """The standard compressed, base64 HdrHistogram encoding (readable by other HDR ports)."""
    data: bytes = histogram.encode()
    return data.decode("ascii")


def decode(text: str) -> HdrHistogram:
    """Decode into a fresh histogram of our range, so adding decoded ones never overflows."""
    histogram = new_histogram()
    if text:
        histogram.add(HdrHistogram.decode(text.encode("ascii")))
    return histogram
