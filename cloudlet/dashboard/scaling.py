"""The app page's Scaling panel: what it shows, and the form that changes the settings.

The panel reads the same things as `GET /api/v1/apps/{id}/scaling` (state and ready instances
come from `scaling_json`, so the two never disagree) plus the routers' counters for the live
revision. The form is validated like `PATCH .../scaling`: `cloudlet.scaling.problems()` and its
bounds. The routes themselves are in routes.py, next to the other app pages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloudlet.api.scaling import scaling_json
from cloudlet.control.platform import Platform
from cloudlet.scaling import (
    CAPACITY_SHARE_MAX,
    CAPACITY_SHARE_MIN_EXCLUSIVE,
    FIELDS,
    MAX_INSTANCES_MAX,
    MAX_INSTANCES_MIN,
    MIN_INSTANCES_MIN,
    SCALE_TO_ZERO_AFTER_S_MAX,
    SCALE_TO_ZERO_AFTER_S_MIN,
    TARGET_CONCURRENCY_MAX,
    TARGET_CONCURRENCY_MIN,
    Scaling,
    limits_of,
    problems,
    scaling_of,
)
from cloudlet.store.models import App, Team

POLL_EVERY = "2s"

# state (as the API names it) -> (label, badge tone, what it means)
STATES: dict[str, tuple[str, str, str]] = {
    "running": ("Running", "ok", "Ready instances serve requests."),
    "scaled_to_zero": (
        "Scaled to zero",
        "idle",
        "Imported, starts on the next request.",
    ),
    "stopped": (
        "Stopped",
        "idle",
        "Nothing runs; the next request imports the app again (a cold start).",
    ),
    "not_deployed": ("Not deployed", "idle", "Nothing serves traffic yet."),
}

_INT = re.compile(r"[+-]?\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_MAX_DIGITS = 12  # far beyond every bound; keeps int() and the messages small


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One setting as the form shows it."""

    name: str
    label: str
    hint: str
    minimum: str  # the HTML attributes; the server checks with problems() all the same
    maximum: str
    step: str
    unit: str = ""


FORM_FIELDS = (
    FieldSpec(
        "min_instances",
        "Min instances",
        f"Kept running without traffic; {MIN_INSTANCES_MIN} lets the app scale to zero. "
        "At most max instances.",
        str(MIN_INSTANCES_MIN),
        str(MAX_INSTANCES_MAX),
        "1",
    ),
    FieldSpec(
        "max_instances",
        "Max instances",
        f"Never more than this; {MAX_INSTANCES_MIN} to {MAX_INSTANCES_MAX}.",
        str(MAX_INSTANCES_MIN),
        str(MAX_INSTANCES_MAX),
        "1",
    ),
    FieldSpec(
        "target_concurrency",
        "Target concurrency",
        "Requests in flight one instance should carry; "
        f"{TARGET_CONCURRENCY_MIN} to {TARGET_CONCURRENCY_MAX:,}.",
        str(TARGET_CONCURRENCY_MIN),
        str(TARGET_CONCURRENCY_MAX),
        "1",
    ),
    FieldSpec(
        "scale_to_zero_after_s",
        "Scale to zero after",
        "Idle seconds before the last instance stops (with min 0); "
        f"{SCALE_TO_ZERO_AFTER_S_MIN} to {SCALE_TO_ZERO_AFTER_S_MAX:,}.",
        str(SCALE_TO_ZERO_AFTER_S_MIN),
        str(SCALE_TO_ZERO_AFTER_S_MAX),
        "1",
        unit="s",
    ),
    FieldSpec(
        "capacity_share",
        "Capacity share",
        "The share of full capacity (max instances times target concurrency) the router "
        "admits, beyond it 429; "
        f"more than {CAPACITY_SHARE_MIN_EXCLUSIVE:g}, at most {CAPACITY_SHARE_MAX:g}.",
        f"{CAPACITY_SHARE_MIN_EXCLUSIVE:g}",
        f"{CAPACITY_SHARE_MAX:g}",
        "any",
    ),
)
assert tuple(f.name for f in FORM_FIELDS) == FIELDS


def duration(seconds: int) -> str:
    """300 -> "5 min", 90 -> "1 min 30 s", 86400 -> "24 h"."""
    parts = []
    for unit, size in (("h", 3600), ("min", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {unit}")
    return " ".join(parts) or "0 s"


def percent(share: float) -> str:
    return f"{round(share * 100, 4):g} %"


def team_caps(team: Team) -> str | None:
    """The team's caps in words, or None when it has none."""
    limits = limits_of(team)
    caps = []
    if limits.max_instances is not None:
        caps.append(f"{limits.max_instances:,} instance{'s' if limits.max_instances != 1 else ''}")
    if limits.max_memory_mb is not None:
        caps.append(f"{limits.max_memory_mb:,} MB of memory")
    if not caps:
        return None
    return "At most " + " and ".join(caps) + " for all the team's apps together"


def form_values(scaling: Scaling) -> dict[str, str]:
    """The settings as the form's inputs show them."""
    return {
        "min_instances": str(scaling.min_instances),
        "max_instances": str(scaling.max_instances),
        "target_concurrency": str(scaling.target_concurrency),
        "scale_to_zero_after_s": str(scaling.scale_to_zero_after_s),
        "capacity_share": f"{scaling.capacity_share:g}",
    }


def parse_form(values: Mapping[str, str]) -> tuple[Scaling | None, dict[str, str]]:
    """The posted settings, or the errors by field (the first per field).

    Whole numbers only for the counts ("2.5" is a mistake, as in the API); then the same
    bounds as the API, through `problems()`.
    """
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for name in FIELDS:
        raw = values.get(name, "").strip()
        if not raw:
            errors[name] = "is required"
        elif name == "capacity_share":
            if len(raw) <= 2 * _MAX_DIGITS and _DECIMAL.fullmatch(raw):
                parsed[name] = float(raw)
            else:
                errors[name] = "must be a number, like 0.5"
        elif not _INT.fullmatch(raw):
            errors[name] = "must be a whole number"
        elif len(raw.lstrip("+-")) > _MAX_DIGITS:
            errors[name] = "is far too large"
        else:
            parsed[name] = int(raw)
    if errors:
        return None, errors
    scaling = Scaling(**parsed)
    labels = {spec.name: spec.label.lower() for spec in FORM_FIELDS}
    for field, message in problems(scaling):
        # "must not exceed max_instances (...)": the form's words, not the API's names.
        for name, label in labels.items():
            message = message.replace(name, label)
        errors.setdefault(field, message)
    return (None, errors) if errors else (scaling, {})


def panel_context(
    platform: Platform,
    team: Team,
    app: App,
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    """Everything the panel templates show. `values` and `errors`: a rejected form, shown
    again as it was typed."""
    status = scaling_json(app, platform)
    settings = scaling_of(app)
    label, tone, note = STATES[status["state"]]
    live = app.live_deployment_id
    traffic: dict[str, int] | None = None
    if live is not None:
        feed = platform.feed
        traffic = {
            "inflight": feed.inflight().get(live, 0),
            "held": feed.held().get(live, 0),
            "requests": feed.requests().get(live, 0),
            "rejected": feed.rejected().get(live, 0),
        }
    page = f"/{team.slug}/apps/{app.slug}"
    shown = dict(form_values(settings))
    if values is not None:
        shown.update({name: values.get(name, "") for name in FIELDS})
    return {
        "state": status["state"],
        "state_label": label,
        "state_tone": tone,
        "state_note": note,
        "instances": status["instances"],
        "revision": live,
        "traffic": traffic,
        "routers": platform.feed.routers,
        "settings": settings,
        "scale_to_zero_after": duration(settings.scale_to_zero_after_s),
        "capacity_percent": percent(settings.capacity_share),
        "admission_limit": settings.admission_limit,
        "team_caps": team_caps(team),
        "fields": FORM_FIELDS,
        "inputs": shown,
        "errors": dict(errors or {}),
        "saved": saved,
        "action": f"{page}/scaling",
        "poll_url": f"{page}/scaling/live",
        "poll_every": POLL_EVERY,
    }
