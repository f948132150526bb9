"""The autoscaler's decision rules, as pure functions (after Knative's KPA; see
shared/reference/autoscaling.md)."""

from __future__ import annotations

import math

from cloudlet.scaling import Scaling, TeamLimits

# Knative's defaults: average over 60 s for scaling down, 70 % target utilisation.
STABLE_WINDOW_S = 60.0
TARGET_UTILISATION = 0.7
UNLIMITED = 1 << 30


def desired_instances(
    scaling: Scaling, *, observed: int, average: float, current: int, idle_s: float
) -> int:
    """Instances a revision should run.

    ``observed``: requests in flight and held now; ``average``: over the stable window;
    ``current``: instances ready or starting; ``idle_s``: since the last request.
    """
    target = scaling.target_concurrency * TARGET_UTILISATION
    # Up at once on the current value, down only as the window's average comes down.
    desired = max(math.ceil(observed / target), math.ceil(average / target))
    # Zero is decided by idle time alone (the average lags the last request by up to the
    # stable window); until then one instance stays warm.
    if idle_s >= scaling.scale_to_zero_after_s:
        desired = 0
    elif desired == 0 and current > 0:
        desired = 1
    if desired < current:
        desired = max(desired, current // 2)  # at most halve per decision
    return max(scaling.min_instances, min(scaling.max_instances, desired))


def team_room(limits: TeamLimits, used: int, memory_limit_mb: int) -> int:
    """How many more instances fit in a team's caps, with ``used`` running or starting."""
    room = UNLIMITED
    if limits.max_instances is not None:
        room = min(room, limits.max_instances - used)
    if limits.max_memory_mb is not None:
        room = min(room, limits.max_memory_mb // memory_limit_mb - used)
    return max(0, room)
