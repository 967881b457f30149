"""The inline SVG: bars coloured by availability with their figures, sparkline, chart, badge."""

from __future__ import annotations

import re

from monitor.web.status.history import Bucket
from monitor.web.status.svg import badge, level, sparkline, ttft_chart, uptime_bars


def test_bars_are_coloured_by_availability_steps() -> None:
    assert [level(a) for a in (1.0, 0.995, 0.96, 0.85, 0.5, 0.0, None)] == [
        "a5",
        "a4",
        "a3",
        "a2",
        "a1",
        "a0",
        "nd",
    ]


def test_a_bars_tooltip_gives_time_availability_probes_and_ttft() -> None:
    svg = uptime_bars([Bucket(0, 120, 117, 143.6, 200.0)], ["Nov 24 15:00"], "m")
    (title,) = re.findall(r"<title>(.*?)</title>", svg)
    assert title == "Nov 24 15:00 · 97.5% · 120 probes · TTFT p50 144 ms"
    assert 'class="a3"' in svg


def test_periods_without_data_are_drawn_as_one_grey_bar() -> None:
    labels = [f"d{i}" for i in range(40)]
    buckets: list[Bucket | None] = [None] * 39 + [Bucket(0, 10, 10, None, None)]
    svg = uptime_bars(buckets, labels, "m")
    assert svg.count("<rect") == 2
    assert "d0 to d38 · no data" in svg
    assert "d39 · 100% · 10 probes</title>" in svg


def test_sparkline_without_any_ttft_says_so() -> None:
    assert "no TTFT yet" in sparkline([None] * 24, "m")


def test_sparkline_draws_a_path_through_measured_hours() -> None:
    svg = sparkline([100.0, None, 120.0, 130.0], "m")
    assert svg.count("M") == 2  # the gap breaks the line
    assert "100 ms to 130 ms" in svg


def test_chart_has_a_tooltip_per_day_with_p50_and_p95() -> None:
    svg = ttft_chart([Bucket(0, 10, 10, 100.0, 180.0), None], [0.0, 86400.0], "m")
    assert "TTFT p50 100 ms · p95 180 ms" in svg
    assert 'class="p95"' in svg and 'class="p50"' in svg


def test_badge_names_the_model_and_escapes_it() -> None:
    svg = badge('<script>alert("x")</script>', "up · 99.9% 24h", "served")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "up · 99.9% 24h" in svg
