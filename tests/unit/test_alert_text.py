"""Our HTML texts shown in a callback alert, which renders no HTML and holds 200 characters."""

from __future__ import annotations

from bot.handlers.common import alert_text


def test_tags_dropped_and_entities_unescaped() -> None:
    assert alert_text("<b>Order #5</b> is paid &amp; &lt;on its way&gt;") == (
        "Order #5 is paid & <on its way>"
    )


def test_cut_to_what_an_alert_holds() -> None:
    assert len(alert_text("<b>x</b>" + "y" * 300)) == 200
