"""The autoscaler's decision rules, as pure functions."""

from __future__ import annotations

import dataclasses

from cloudlet.autoscale.kpa import UNLIMITED, desired_instances, team_room
from cloudlet.scaling import DEFAULT, Scaling, TeamLimits

# target 10 at 70 % utilisation: one instance per 7 requests in flight.
TEN = dataclasses.replace(DEFAULT, target_concurrency=10, max_instances=8)


def decide(scaling: Scaling = TEN, **state: float) -> int:
    values = {"observed": 0, "average": 0.0, "current": 1, "idle_s": 0.0, **state}
    return desired_instances(
        scaling,
        observed=int(values["observed"]),
        average=values["average"],
        current=int(values["current"]),
        idle_s=values["idle_s"],
    )


def test_scales_up_at_once_on_the_current_concurrency() -> None:
    assert decide(observed=7, average=1.0) == 1
    assert decide(observed=8, average=1.0) == 2
    assert decide(observed=30, average=1.0) == 5


def test_scales_down_with_the_window_average_and_at_most_halves() -> None:
    # The burst is over, but the window still remembers it: keep what the average needs.
    assert decide(observed=0, average=20.0, current=4) == 3
    # Quiet window: 8 -> 4 -> 2 -> 1, never straight down.
    assert decide(observed=0, average=0.0, current=8) == 4
    assert decide(observed=0, average=0.0, current=4) == 2
    assert decide(observed=0, average=0.0, current=2) == 1


def test_one_stays_warm_until_idle_for_scale_to_zero_after_s() -> None:
    scaling = dataclasses.replace(TEN, scale_to_zero_after_s=300)
    assert decide(scaling, current=1, idle_s=299) == 1
    assert decide(scaling, current=1, idle_s=300) == 0
    # At zero with nothing going on: stays at zero.
    assert decide(scaling, current=0, idle_s=5) == 0
    # Idle long enough overrides a window average that still remembers old traffic.
    assert decide(scaling, current=2, average=9.0, idle_s=301) == 1  # halving first
    assert decide(scaling, current=1, average=9.0, idle_s=302) == 0


def test_min_and_max_bound_the_decision() -> None:
    pinned = dataclasses.replace(TEN, min_instances=2, max_instances=3)
    assert decide(pinned, current=2, idle_s=10_000) == 2
    assert decide(pinned, observed=1000, current=2) == 3


def test_team_room() -> None:
    assert team_room(TeamLimits(None, None), used=50, memory_limit_mb=512) == UNLIMITED
    assert team_room(TeamLimits(4, None), used=3, memory_limit_mb=512) == 1
    assert team_room(TeamLimits(4, None), used=6, memory_limit_mb=512) == 0  # never negative
    # 2 GB at 512 MB each: 4 instances, whatever the instance cap says.
    assert team_room(TeamLimits(10, 2048), used=1, memory_limit_mb=512) == 3
