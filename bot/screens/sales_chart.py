"""/stats' chart: revenue per day (bars) and paid orders per day (a line), drawn with
matplotlib's Agg canvas (no display, no pyplot state: safe in a worker thread)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from babel.dates import format_date

from storage import DaySales

TICK_EVERY = 5  # days between labelled ticks


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """Every word on the chart, in the admin's language (read before the drawing thread)."""

    title: str
    revenue: str
    orders: str
    revenue_axis: str
    days: tuple[str, ...]  # one label per day


def chart_labels(
    days: Sequence[DaySales], language: str, *, title: str, revenue: str, orders: str, axis: str
) -> ChartLabels:
    names = tuple(format_date(d.day, "d MMM", locale=language) for d in days)
    return ChartLabels(title, revenue, orders, axis, names)


def render_sales_chart(days: Sequence[DaySales], labels: ChartLabels) -> bytes:
    """The chart as PNG bytes. Runs off the event loop (asyncio.to_thread): drawing takes a
    few hundred milliseconds of CPU."""
    # Imported here: matplotlib takes a while to load, and only /stats needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 5), dpi=100, layout="tight")
    FigureCanvasAgg(figure)
    bars = figure.add_subplot()
    x = list(range(len(days)))
    # Floats for the drawing only (pixel heights); the amounts shown as text stay Decimal.
    bars.bar(x, [float(d.revenue) for d in days], color="#4c9be8", label=labels.revenue)
    bars.set_ylabel(labels.revenue_axis)
    bars.set_title(labels.title)
    bars.set_xticks(x[::TICK_EVERY], labels.days[::TICK_EVERY])
    bars.set_ylim(bottom=0)
    line_axes = bars.twinx()
    line_axes.plot(x, [d.orders for d in days], color="#e8744c", marker="o", label=labels.orders)
    line_axes.set_ylabel(labels.orders)
    line_axes.set_ylim(bottom=0)
    line_axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles = bars.get_legend_handles_labels()[0] + line_axes.get_legend_handles_labels()[0]
    bars.legend(handles, [labels.revenue, labels.orders], loc="upper left")
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
