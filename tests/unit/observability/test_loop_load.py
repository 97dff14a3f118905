"""LoopLoad smooths the loop's lag: one hiccup does not count as saturation, a trend does."""

from __future__ import annotations

import pytest

from voxdialog.observability.loop_lag import LoopLoad


def test_one_hiccup_stays_below_a_steady_lag() -> None:
    hiccup, steady = LoopLoad(), LoopLoad()
    for lag_s in (0.001, 0.001, 0.4, 0.001, 0.001):
        hiccup.record(lag_s)
    for _ in range(8):
        steady.record(0.2)
    assert hiccup.lag_ms < 150 < steady.lag_ms


def test_the_load_falls_back_when_the_loop_recovers() -> None:
    load = LoopLoad()
    for _ in range(8):
        load.record(0.5)
    for _ in range(12):
        load.record(0.0)
    assert load.lag_ms < 10


def test_smoothing_is_a_weight() -> None:
    with pytest.raises(ValueError, match="smoothing"):
        LoopLoad(smoothing=0)
