"""The contract's JSON models (§7), built from store rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloudlet.settings import Settings
from cloudlet.statuses import DOMAIN_FAILED, DOMAIN_LIVE
from cloudlet.store.models import App, CustomDomain, Deployment, Team


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def team_json(team: Team) -> dict[str, Any]:
    return {"id": team.id, "slug": team.slug, "name": team.name, "created_at": iso(team.created_at)}


def app_json(app: App, settings: Settings) -> dict[str, Any]:
    return {
        "id": app.id,
        "team_id": app.team_id,
        "slug": app.slug,
        "name": app.name,
        "directory": app.directory,
        "url": settings.app_url(app.slug),
        "region": "local",
        "github_repository": None,
        "created_at": iso(app.created_at),
        "updated_at": iso(app.updated_at),
    }


def dashboard_url(base: str, team: Team, app: App, deployment: Deployment | None = None) -> str:
    url = f"{base}/{team.slug}/apps/{app.slug}"
    return f"{url}/deployments/{deployment.id}" if deployment else url


def deployment_json(
    deployment: Deployment, app: App, team: Team, settings: Settings, dashboard_base: str
) -> dict[str, Any]:
    failure = None
    if deployment.failure_code:
        failure = {
            "error_code": deployment.failure_code,
            "error_title": deployment.failure_title or "",
            "error_message": deployment.failure_message or "",
            "error_hint": deployment.failure_hint or "",
        }
    return {
        "id": deployment.id,
        "app_id": deployment.app_id,
        "slug": deployment.slug,
        "status": deployment.status,
        "created_at": iso(deployment.created_at),
        "updated_at": iso(deployment.updated_at),
        "url": settings.app_url(app.slug),
        "dashboard_url": dashboard_url(dashboard_base, team, app, deployment),
        "failure": failure,
    }


def domain_json(domain: CustomDomain, settings: Settings, app: App) -> dict[str, Any]:
    records: list[dict[str, Any]] = [
        {
            "type": "TXT",
            "name": f"_fc-dcv.{domain.name}",
            "value": f"cloudlet-verification={domain.verification_token}",
        },
        {"type": "CNAME", "name": domain.name, "value": f"{app.slug}.{settings.domain}"},
    ]
    live = domain.status in DOMAIN_LIVE
    failed = domain.status in DOMAIN_FAILED
    return {
        "id": domain.id,
        "name": domain.name,
        "status": domain.status,
        "setup_in_progress": not live and not failed,
        "setup_failed": failed,
        "setup_successful": live,
        "is_using_pre_validation": domain.is_using_pre_validation,
        "dns_records": records,
        "last_error": domain.last_error,
        "created_at": iso(domain.created_at),
        "updated_at": iso(domain.updated_at),
        "setup_started_at": iso(domain.setup_started_at),
        "setup_checked_at": iso(domain.setup_checked_at),
        "app_id": domain.app_id,
    }
