"""Pictures of :class:`~agent_continuity.analytics.Analytics`: ``analytics --chart FILE``.

SVG is written here with no dependency: sessions started, completed and
interrupted per period, interruptions by cause, and recoveries by confidence.
PNG draws the same three panels with matplotlib, an optional extra
(``pip install 'agent-continuity[charts]'``), imported only when a PNG is asked for.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Any

from agent_continuity.analytics import Analytics
from agent_continuity.errors import ChartUnavailable, InvalidInput
from agent_continuity.storage.atomic import replace_atomically

WIDTH, HEIGHT = 900, 620
SERIES = (("started", "#4c78a8"), ("completed", "#54a24b"), ("interrupted", "#e45756"))
CAUSE_COLOUR, CONFIDENCE_COLOUR = "#e45756", "#f58518"


def write_chart(analytics: Analytics, path: str | os.PathLike[str]) -> Path:
    """Draw the analytics into ``path``; the format follows its suffix (.svg or .png).

    Raises:
        InvalidInput: If the suffix is neither.
        ChartUnavailable: For a PNG when matplotlib is not installed.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".svg":
        data = svg(analytics).encode("utf-8")
    elif suffix == ".png":
        data = png(analytics)
    else:
        raise InvalidInput(f"--chart {target.name}: give a file ending in .svg or .png")
    target.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(target, data)
    return target


def _label_step(periods: int) -> int:
    """Label every n-th period so that the dates (10 characters each) never overlap."""
    return max(1, -(-periods // 7))


def _title(analytics: Analytics) -> str:
    who = analytics.user or "every user"
    since = analytics.since.date().isoformat() if analytics.since else "the beginning"
    return f"Sessions of {who} since {since}, by {analytics.granularity}"


def _text(
    x: float, y: float, text: str, size: int = 12, anchor: str = "start", **extra: Any
) -> str:
    more = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in extra.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{more}>'
        f"{escape(text)}</text>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
        f'fill="{fill}"><title>{escape(tip)}</title></rect>'
    )


def _timeline(analytics: Analytics, x0: float, y0: float, w: float, h: float) -> list[str]:
    out = [_text(x0, y0 - 8, "Sessions per " + analytics.granularity, 14, font_weight="bold")]
    periods = analytics.periods
    top = max((max(p.started, p.completed, p.interrupted) for p in periods), default=0) or 1
    out.append(f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="#333"/>')
    out.append(_text(x0 - 6, y0 + 10, str(top), 10, "end"))
    out.append(_text(x0 - 6, y0 + h, "0", 10, "end"))
    if not periods:
        out.append(_text(x0 + w / 2, y0 + h / 2, "no sessions in this range", 13, "middle"))
        return out
    slot = w / len(periods)
    bar = min(max(slot * 0.8 / len(SERIES), 0.5), 40.0)  # a few periods: not slabs
    pad = (slot - bar * len(SERIES)) / 2
    label_every = _label_step(len(periods))
    for i, period in enumerate(periods):
        for j, (name, colour) in enumerate(SERIES):
            value = getattr(period, name)
            bh = h * value / top
            x = x0 + i * slot + pad + j * bar
            tip = f"{period.start.isoformat()}: {value} {name}"
            out.append(_rect(x, y0 + h - bh, bar, bh, colour, tip))
        if i % label_every == 0:
            out.append(
                _text(x0 + i * slot + slot / 2, y0 + h + 14, period.start.isoformat(), 10, "middle")
            )
    for j, (name, colour) in enumerate(SERIES):
        lx = x0 + w - 300 + j * 100
        out.append(_rect(lx, y0 - 20, 10, 10, colour, name))
        out.append(_text(lx + 14, y0 - 11, name, 11))
    return out


def _bars(
    title: str, counts: dict[str, int], colour: str, x0: float, y0: float, w: float, h: float
) -> list[str]:
    """A horizontal bar per label."""
    out = [_text(x0, y0 - 8, title, 14, font_weight="bold")]
    if not counts or not any(counts.values()):
        out.append(_text(x0 + w / 2, y0 + h / 2, "none in this range", 13, "middle"))
        return out
    top = max(counts.values()) or 1
    row = min(h / len(counts), 28)
    label_w = 120
    for i, (label, value) in enumerate(counts.items()):
        y = y0 + i * row
        bw = (w - label_w - 40) * value / top
        out.append(_text(x0 + label_w - 6, y + row * 0.65, label, 11, "end"))
        out.append(_rect(x0 + label_w, y + row * 0.15, bw, row * 0.7, colour, f"{label}: {value}"))
        out.append(_text(x0 + label_w + bw + 4, y + row * 0.65, str(value), 11))
    return out


def svg(analytics: Analytics) -> str:
    """The chart as an SVG document."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        _text(WIDTH / 2, 28, _title(analytics), 16, "middle", font_weight="bold"),
        *_timeline(analytics, 60, 80, WIDTH - 90, 220),
        *_bars(
            "Interruptions by cause",
            analytics.interruptions_by_cause,
            CAUSE_COLOUR,
            30,
            370,
            WIDTH / 2 - 40,
            230,
        ),
        *_bars(
            "Recoveries by confidence",
            dict(reversed(analytics.confidence.items())),  # 0.9-1.0 on top, as in the PNG
            CONFIDENCE_COLOUR,
            WIDTH / 2 + 10,
            370,
            WIDTH / 2 - 40,
            230,
        ),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def png(analytics: Analytics) -> bytes:
    """The chart as PNG bytes, drawn with matplotlib.

    Raises:
        ChartUnavailable: If matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: draw to memory
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ChartUnavailable(
            "a PNG chart needs matplotlib: pip install 'agent-continuity[charts]', "
            "or ask for an .svg chart, which needs nothing"
        ) from None
    import io

    fig = plt.figure(figsize=(WIDTH / 100, HEIGHT / 100), dpi=100)
    grid = fig.add_gridspec(2, 2, height_ratios=(1.1, 1))
    timeline = fig.add_subplot(grid[0, :])
    periods = analytics.periods
    labels = [p.start.isoformat() for p in periods]
    bar = 0.8 / len(SERIES)
    for j, (name, colour) in enumerate(SERIES):
        xs = [i + (j - 1) * bar for i in range(len(periods))]
        timeline.bar(xs, [getattr(p, name) for p in periods], bar, label=name, color=colour)
    step = _label_step(len(periods))
    timeline.set_xticks(range(0, len(periods), step), labels[::step], fontsize=8)
    timeline.set_title("Sessions per " + analytics.granularity, loc="left", fontweight="bold")
    # Above the plot, in one row: inside it would cover the newest bars.
    timeline.legend(loc="lower right", bbox_to_anchor=(1, 1), ncol=3, fontsize=8, frameon=False)
    timeline.yaxis.set_major_locator(MaxNLocator(integer=True))
    for spot, title, counts, colour, top_first in (
        (
            grid[1, 0],
            "Interruptions by cause",
            analytics.interruptions_by_cause,
            CAUSE_COLOUR,
            True,
        ),
        (grid[1, 1], "Recoveries by confidence", analytics.confidence, CONFIDENCE_COLOUR, False),
    ):
        axes = fig.add_subplot(spot)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        # barh draws its first name at the bottom: the most frequent cause goes on top,
        # and the confidence buckets read upwards from 0.0.
        names = list(counts)[::-1] if top_first else list(counts)
        axes.barh(names, [counts[n] for n in names], color=colour)
        axes.set_title(title, loc="left", fontweight="bold")
        axes.tick_params(labelsize=8)
    fig.suptitle(_title(analytics), fontweight="bold")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
