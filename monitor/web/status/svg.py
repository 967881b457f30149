"""Inline SVG drawn on the server: uptime bars, TTFT sparklines, the 30-day chart, badges.

Strings are built directly (not through templates): a page of 100 models holds over ten thousand
bars, and f-strings keep it within the render budget. Every text that came from outside (model ids,
host URLs) goes through `escape`; numbers are formatted here.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from monitor.web.status.history import Bucket
from monitor.web.status.words import day_label, ms, pct

_BAR_H = 22


def level(availability: float | None) -> str:
    """CSS class of an availability: `a5` (>= 99.9%) down to `a0` (nothing served), `nd` no data."""
    if availability is None:
        return "nd"
    if availability >= 0.999:
        return "a5"
    if availability >= 0.99:
        return "a4"
    if availability >= 0.95:
        return "a3"
    if availability >= 0.8:
        return "a2"
    return "a1" if availability > 0 else "a0"


def uptime_bars(buckets: Sequence[Bucket | None], labels: Sequence[str], name: str) -> Markup:
    """One bar per period, coloured by availability, with its figures as a tooltip (`<title>`)."""
    return bars_svg(bar_rects(buckets, labels, 0, len(labels) > 30), len(labels), name)


def bars_svg(rects: str, n: int, name: str) -> Markup:
    """The `<svg>` around the rectangles of `n` periods (`bar_rects`)."""
    daily = n > 30
    return Markup(
        f'<svg class="bars{" d" if daily else ""}" viewBox="0 0 {n * (5 if daily else 10)} {_BAR_H}" '
        f'preserveAspectRatio="none" role="img" aria-label="{escape(name)}">{rects}</svg>'
    )


def bar_rects(buckets: Sequence[Bucket | None], labels: Sequence[str], start: int, daily: bool) -> str:
    """The bars of periods `start`, `start + 1`, ... (their labels and buckets given from there).

    Bars are sized by the stylesheet (`svg.bars rect`), and the labels are ours (dates): nothing
    here needs escaping, which matters at ten thousand bars a page."""
    n = len(labels)
    step = 5 if daily else 10
    parts: list[str] = []
    add = parts.append
    i = 0
    while i < n:
        b = buckets[i]
        x = (start + i) * step
        if b is None or not b.probes:
            # A run of periods without data is one bar: a new monitor's 90 days are mostly empty.
            j = i
            while j + 1 < n and (buckets[j + 1] is None or not buckets[j + 1].probes):  # type: ignore[union-attr]
                j += 1
            span = labels[i] if i == j else f"{labels[i]} to {labels[j]}"
            if i == j:
                add(f'<rect x="{x}" class="nd"><title>{span} · no data</title></rect>')
            else:
                w = (j - i + 1) * step - (2 if step == 10 else 1)
                add(f'<rect x="{x}" width="{w}" class="nd"><title>{span} · no data</title></rect>')
            i = j + 1
            continue
        a = b.ok / b.probes
        ttft = "" if b.ttft_ms_p50 is None else f" · TTFT p50 {b.ttft_ms_p50:,.0f} ms"
        figures = f"{labels[i]} · {pct(a)} · {b.probes:,} probes{ttft}"
        add(f'<rect x="{x}" class="{level(a)}"><title>{figures}</title></rect>')
        i += 1
    return "".join(parts)


def _path(values: Sequence[float | None], x_step: float, height: float, top: float) -> str:
    """An SVG path through the values (gaps break it), scaled so that `top` is at the top."""
    d: list[str] = []
    pen_up = True
    for i, v in enumerate(values):
        if v is None:
            pen_up = True
            continue
        y = height - (v / top) * height if top > 0 else height
        d.append(f"{'M' if pen_up else 'L'}{i * x_step:.1f} {y:.1f}")
        pen_up = False
    return "".join(d)


def sparkline(values: Sequence[float | None], name: str) -> Markup:
    """TTFT p50 per hour, last 24 hours; a lone point is drawn as a dot."""
    known = [v for v in values if v is not None]
    if not known:
        return Markup('<span class="nodata">no TTFT yet</span>')
    top = max(known) * 1.1
    w, h = 120.0, 24.0
    step = w / max(len(values) - 1, 1)
    summary = f"{name}: TTFT p50, last 24 h, {ms(min(known))} to {ms(max(known))}"
    body = f'<path d="{_path(values, step, h, top)}"/>'
    if len(known) == 1:
        i = next(i for i, v in enumerate(values) if v is not None)
        body = f'<circle cx="{i * step:.1f}" cy="{h - known[0] / top * h:.1f}" r="2"/>'
    return Markup(
        f'<svg class="spark" viewBox="-2 -2 {w + 4:.0f} {h + 4:.0f}" role="img" '
        f'aria-label="{escape(summary)}">'
        f"<title>{escape(summary)}</title>{body}</svg>"
    )


def ttft_chart(buckets: Sequence[Bucket | None], slots: Sequence[float], name: str) -> Markup:
    """TTFT p50 and p95 per day over the slots (30 days), with a tooltip per day."""
    p50 = [None if b is None else b.ttft_ms_p50 for b in buckets]
    p95 = [None if b is None else b.ttft_ms_p95 for b in buckets]
    known = [v for v in (*p50, *p95) if v is not None]
    if not known:
        return Markup('<p class="nodata">No time-to-first-token measured in the last 30 days.</p>')
    top = max(known) * 1.1
    w, h, left, bottom = 600.0, 180.0, 56.0, 20.0
    step = (w - left) / max(len(slots) - 1, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {w:.0f} {h + bottom:.0f}" role="img" '
        f'aria-label="{escape(name)}: TTFT p50 and p95 per day, last 30 days">',
        f'<g class="grid"><line x1="{left}" y1="0" x2="{w}" y2="0"/><line x1="{left}" y1="{h / 2}" '
        f'x2="{w}" y2="{h / 2}"/><line x1="{left}" y1="{h}" x2="{w}" y2="{h}"/></g>',
        f'<text x="{left - 4}" y="10" class="ax end">{escape(ms(top))}</text>',
        f'<text x="{left - 4}" y="{h / 2 + 4}" class="ax end">{escape(ms(top / 2))}</text>',
        f'<text x="{left - 4}" y="{h}" class="ax end">0</text>',
        f'<text x="{left}" y="{h + 16}" class="ax">{escape(day_label(slots[0]))}</text>',
        f'<text x="{w}" y="{h + 16}" class="ax end">{escape(day_label(slots[-1]))}</text>',
        f'<g transform="translate({left} 0)">',
        f'<path class="p95" d="{_path(p95, step, h, top)}"/>',
        f'<path class="p50" d="{_path(p50, step, h, top)}"/>',
    ]
    for i, (slot, b) in enumerate(zip(slots, buckets, strict=True)):
        if b is None or b.ttft_ms_p50 is None:
            continue
        y = h - b.ttft_ms_p50 / top * h
        text = (
            f"{day_label(slot)} · TTFT p50 {ms(b.ttft_ms_p50)} · p95 {ms(b.ttft_ms_p95)}"
            f" · {pct(b.availability)}"
        )
        parts.append(f'<circle cx="{i * step:.1f}" cy="{y:.1f}" r="3"><title>{escape(text)}</title></circle>')
    parts.append("</g></svg>")
    return Markup("".join(parts))


BADGE_COLOURS = {"served": "#0072b2", "degraded": "#b35900", "unserved": "#c03c00", "unknown": "#6e6e6e"}


def _text_width(text: str) -> int:
    # Verdana 11 px averages about 6.5 px per character; shields.io measures, we estimate.
    return int(len(text) * 6.5) + 10


def badge(label: str, message: str, status: str) -> str:
    """A shields.io-style flat badge: `label | message`, the message coloured by `status`."""
    label = label[:60]
    lw, mw = _text_width(label), _text_width(message)
    colour = BADGE_COLOURS.get(status, BADGE_COLOURS["unknown"])
    el, em = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lw + mw}" height="20" role="img" '
        f'aria-label="{el}: {em}"><title>{el}: {em}</title>'
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        f'<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{lw + mw}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{colour}"/>'
        f'<rect width="{lw + mw}" height="20" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        f'font-size="11"><text x="{lw / 2:.1f}" y="14">{el}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="14">{em}</text></g></svg>'
    )
