"""Scaling vocabulary shared by the API, the autoscaler and the router: an app's scaling
settings, their bounds, and a team's caps.

`App` and `Team` are only named for typing: this module imports nothing of the store at run
time, so the data plane may use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloudlet.store.models import App, Team

# Bounds (inclusive unless said otherwise).
MIN_INSTANCES_MIN = 0  # ... and at most max_instances
MAX_INSTANCES_MIN = 1
MAX_INSTANCES_MAX = 100
TARGET_CONCURRENCY_MIN = 1
TARGET_CONCURRENCY_MAX = 10_000
SCALE_TO_ZERO_AFTER_S_MIN = 1
SCALE_TO_ZERO_AFTER_S_MAX = 86_400
CAPACITY_SHARE_MIN_EXCLUSIVE = 0.0  # capacity_share > 0
CAPACITY_SHARE_MAX = 1.0

FIELDS = (
    "min_instances",
    "max_instances",
    "target_concurrency",
    "scale_to_zero_after_s",
    "capacity_share",
)


@dataclass(frozen=True, slots=True)
class Scaling:
    """How one app scales.

    - `min_instances`: instances kept running even without traffic (0 = may scale to zero).
    - `max_instances`: never more instances than this.
    - `target_concurrency`: in-flight requests one instance should carry.
    - `scale_to_zero_after_s`: idle seconds before the last instance stops (with min 0).
    - `capacity_share`: the share of the maximum capacity (`max_instances *
      target_concurrency`) the router admits; beyond it, 429.
    """

    min_instances: int
    max_instances: int
    target_concurrency: int
    scale_to_zero_after_s: int
    capacity_share: float

    @property
    def admission_limit(self) -> int:
        """In-flight requests the router admits to the app at most (at least 1)."""
        capacity = self.max_instances * self.target_concurrency * self.capacity_share
        # Rounded first so that float noise (0.29 * 100 = 28.999...) does not lose a request.
        return max(1, math.floor(round(capacity, 6)))


DEFAULT = Scaling(
    min_instances=0,
    max_instances=4,
    target_concurrency=100,
    scale_to_zero_after_s=300,
    capacity_share=1.0,
)


def problems(scaling: Scaling) -> list[tuple[str, str]]:
    """What is out of bounds, as (field, message) pairs; empty when the settings are valid."""
    found: list[tuple[str, str]] = []

    def within(field: str, value: int, low: int, high: int) -> None:
        if not low <= value <= high:
            found.append((field, f"must be between {low} and {high}, not {value}"))

    within("max_instances", scaling.max_instances, MAX_INSTANCES_MIN, MAX_INSTANCES_MAX)
    if scaling.min_instances < MIN_INSTANCES_MIN:
        found.append(("min_instances", f"must be at least {MIN_INSTANCES_MIN}"))
    elif scaling.min_instances > scaling.max_instances:
        found.append(
            (
                "min_instances",
                f"must not exceed max_instances ({scaling.min_instances} > "
                f"{scaling.max_instances})",
            )
        )
    within(
        "target_concurrency",
        scaling.target_concurrency,
        TARGET_CONCURRENCY_MIN,
        TARGET_CONCURRENCY_MAX,
    )
    within(
        "scale_to_zero_after_s",
        scaling.scale_to_zero_after_s,
        SCALE_TO_ZERO_AFTER_S_MIN,
        SCALE_TO_ZERO_AFTER_S_MAX,
    )
    share = scaling.capacity_share
    if not (math.isfinite(share) and CAPACITY_SHARE_MIN_EXCLUSIVE < share <= CAPACITY_SHARE_MAX):
        found.append(
            (
                "capacity_share",
                f"must be greater than {CAPACITY_SHARE_MIN_EXCLUSIVE:g} and at most "
                f"{CAPACITY_SHARE_MAX:g}, not {share:g}",
            )
        )
    return found


def scaling_of(app: App) -> Scaling:
    """The app's settings; a row not flushed yet has the defaults."""
    d = DEFAULT
    return Scaling(
        min_instances=d.min_instances if app.min_instances is None else app.min_instances,
        max_instances=d.max_instances if app.max_instances is None else app.max_instances,
        target_concurrency=(
            d.target_concurrency if app.target_concurrency is None else app.target_concurrency
        ),
        scale_to_zero_after_s=(
            d.scale_to_zero_after_s
            if app.scale_to_zero_after_s is None
            else app.scale_to_zero_after_s
        ),
        capacity_share=(
            d.capacity_share if app.capacity_share is None else float(app.capacity_share)
        ),
    )


@dataclass(frozen=True, slots=True)
class TeamLimits:
    """Caps over all of a team's apps together; None = no cap."""

    max_instances: int | None
    max_memory_mb: int | None


NO_LIMITS = TeamLimits(max_instances=None, max_memory_mb=None)


def limits_of(team: Team) -> TeamLimits:
    return TeamLimits(max_instances=team.max_instances, max_memory_mb=team.max_memory_mb)
