"""`cloudlet apps`: scaling settings and team limits, through a Cloudlet's API.

It uses the official FastAPI Cloud CLI's login: `base_api_url` from `cli.json` and the token
from `auth.json`, in `$FASTAPI_CLOUD_CLI_CONFIG_DIR` (default `~/.config/fastapi-cli`), and the
app linked in the current folder (`.fastapicloud/cloud.json`), as `fastapi` itself does.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

apps_app = typer.Typer(
    help="Scale apps and set team limits on a Cloudlet (uses your `fastapi login`).",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

API_PREFIX = "/api/v1"
TIMEOUT_S = 15.0


class CliError(Exception):
    """A failure to report as one line (and as `{"error": ...}` under --json)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fail(error: CliError, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"error": {"code": error.code, "message": error.message}}))
    else:
        err_console.print(f"[bold red]error:[/] {escape(error.message)}", soft_wrap=True)
    raise typer.Exit(1)


# -- where the official CLI keeps things -----------------------------------------------------


def config_folder() -> Path:
    """fastapi_cloud_cli.utils.config.get_config_folder, without creating it."""
    configured = os.environ.get("FASTAPI_CLOUD_CLI_CONFIG_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(typer.get_app_dir("fastapi-cli"))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError("invalid_input", f"Could not read {path}: {exc}") from exc


def api_url_from_config(folder: Path) -> str:
    path = folder / "cli.json"
    if not path.exists():
        raise CliError(
            "not_logged_in",
            f"No Cloudlet configured: {path} does not exist. Write it as `cloudlet up` shows, "
            "or pass --api-url.",
        )
    settings = _read_json(path)
    url = settings.get("base_api_url") if isinstance(settings, dict) else None
    if not isinstance(url, str) or not url:
        raise CliError(
            "not_logged_in",
            f"No base_api_url in {path}. Write it as `cloudlet up` shows, or pass --api-url.",
        )
    return url


def token_from_config(folder: Path) -> str | None:
    path = folder / "auth.json"
    if not path.exists():
        return None
    auth = _read_json(path)
    token = auth.get("access_token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        raise CliError("not_logged_in", f"No access_token in {path}. Run `fastapi login`.")
    expires_at = auth.get("expires_at")
    if isinstance(expires_at, int | float) and time.time() >= expires_at:
        raise CliError("not_logged_in", "Your login has expired. Run `fastapi login` again.")
    return token


def linked_app_id(folder: Path) -> str:
    """The app `fastapi` linked to this folder (fastapi_cloud_cli.utils.apps.get_app_config)."""
    path = folder / ".fastapicloud" / "cloud.json"
    if not path.exists():
        raise CliError(
            "not_linked",
            "No app given and this folder is not linked to one: pass the app's id or slug, "
            "or run `fastapi cloud apps link` here.",
        )
    config = _read_json(path)
    app_id = config.get("app_id") if isinstance(config, dict) else None
    if not isinstance(app_id, str) or not app_id:
        raise CliError("invalid_input", f"No app_id in {path}.")
    return app_id


def normalize_api_url(url: str) -> str:
    """`http://host:8000` and `http://host:8000/api/v1/` both mean the base_api_url."""
    url = url.strip().rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


# -- talking to the API ----------------------------------------------------------------------


@dataclass
class Client:
    http: httpx.Client
    base_url: str

    def call(
        self, method: str, path: str, *, json_body: Any = None, not_found: str | None = None
    ) -> Any:
        try:
            response = self.http.request(method, path, json=json_body)
        except httpx.ConnectError as exc:
            raise CliError(
                "network_error",
                f"Could not connect to Cloudlet at {self.base_url} ({exc}). "
                "Is it running, and is base_api_url right?",
            ) from exc
        except httpx.TimeoutException as exc:
            raise CliError(
                "network_error", f"Cloudlet at {self.base_url} did not answer in time."
            ) from exc
        except httpx.HTTPError as exc:
            raise CliError("network_error", f"Request to {self.base_url} failed: {exc}") from exc
        if response.is_success:
            try:
                return response.json()
            except ValueError as exc:
                raise CliError(
                    "api_error", f"{self.base_url} did not answer with JSON: is it a Cloudlet?"
                ) from exc
        raise self.error(response, not_found)

    def error(self, response: httpx.Response, not_found: str | None) -> CliError:
        status = response.status_code
        detail = detail_of(response)
        if status == 401:
            return CliError(
                "invalid_token",
                "The token is not valid or has expired. Run `fastapi login` again "
                "(or pass a valid --token).",
            )
        if status == 404 and not_found:
            return CliError("not_found", not_found)
        if status == 403:
            return CliError("permission_denied", detail or "You may not do this.")
        if status == 404:
            return CliError("not_found", detail or "Not found.")
        if status in (400, 409, 422) and detail:
            return CliError("invalid_input", detail)
        return CliError(
            "api_error", f"Cloudlet answered {status} {response.reason_phrase}" + _colon(detail)
        )


def _colon(detail: str | None) -> str:
    return f": {detail}" if detail else "."


def detail_of(response: httpx.Response) -> str | None:
    """The contract's error body: `detail` as a string, or FastAPI's list of `msg`s."""
    try:
        body = response.json()
    except ValueError:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        messages = [
            str(item["msg"]).removeprefix("Value error, ")
            for item in detail
            if isinstance(item, dict) and isinstance(item.get("msg"), str)
        ]
        return "; ".join(messages) or None
    return None


@contextmanager
def connect(api_url: str | None, token: str | None) -> Iterator[Client]:
    folder = config_folder()
    base = normalize_api_url(api_url or api_url_from_config(folder))
    token = token or token_from_config(folder) or os.environ.get("FASTAPI_CLOUD_TOKEN")
    if not token:
        raise CliError(
            "not_logged_in",
            "Not logged in: run `fastapi login` (or pass --token / set CLOUDLET_TOKEN).",
        )
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "cloudlet-cli"}
    with httpx.Client(base_url=base, headers=headers, timeout=TIMEOUT_S) as http:
        yield Client(http, base)


def resolve_app(client: Client, app: str) -> dict[str, Any]:
    """The app by id, else by slug (slugs are global: they are the app's hostname)."""
    missing = f"App not found: {app}. Pass an app id or slug you have access to."
    try:
        found: dict[str, Any] = client.call("GET", f"/apps/{quote(app, safe='')}")
        return found
    except CliError as error:
        if error.code != "not_found":
            raise
    try:
        listed = client.call("GET", "/apps/")
    except CliError as error:
        if error.code == "permission_denied":  # a deploy token: only its own app, by id
            raise CliError("not_found", missing) from error
        raise
    for candidate in listed.get("data", []):
        if candidate.get("slug") == app:
            return dict(candidate)
    raise CliError("not_found", missing)


def resolve_team(client: Client, team: str) -> str:
    """The team's id, from an id or slug."""
    listed = client.call("GET", "/teams/")
    for candidate in listed.get("data", []):
        if team in (candidate.get("id"), candidate.get("slug")):
            return str(candidate["id"])
    return team  # an administrator may address any team by id


# -- commands --------------------------------------------------------------------------------

ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        envvar="CLOUDLET_API_URL",
        help="The API's base URL (default: base_api_url from the FastAPI Cloud CLI's cli.json).",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="CLOUDLET_TOKEN",
        help="API token (default: the token `fastapi login` stored).",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def cap_changes(options: dict[str, tuple[str, str | None]]) -> dict[str, int | None]:
    """`N` sets a cap and `none` removes it; an option not given keeps the cap. The server
    checks the bounds."""
    changes: dict[str, int | None] = {}
    for field, (option, value) in options.items():
        if value is None:
            continue
        if value.strip().lower() in ("none", "null"):
            changes[field] = None
            continue
        try:
            changes[field] = int(value)
        except ValueError as exc:
            raise CliError(
                "invalid_input", f"{option} must be a whole number or `none`, not {value!r}."
            ) from exc
    return changes


@apps_app.command("scale")
def scale(
    app: Annotated[
        str | None,
        typer.Argument(
            help="App id or slug (default: the app linked in this folder).", show_default=False
        ),
    ] = None,
    min_instances: Annotated[
        int | None,
        typer.Option(
            "--min", help="Instances kept running even without traffic (0 = scale to zero)."
        ),
    ] = None,
    max_instances: Annotated[
        int | None, typer.Option("--max", help="Most instances the app may run.")
    ] = None,
    target: Annotated[
        int | None,
        typer.Option("--target", help="In-flight requests one instance should carry."),
    ] = None,
    scale_to_zero_after: Annotated[
        int | None,
        typer.Option(
            "--scale-to-zero-after",
            metavar="SECONDS",
            help="Idle seconds before the last instance stops (with --min 0).",
        ),
    ] = None,
    capacity_share: Annotated[
        float | None,
        typer.Option(
            "--capacity-share",
            help="Share of max x target the router admits (0 < x <= 1); beyond it, 429.",
        ),
    ] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Show an app's scaling settings, or change them with the options."""
    changes = {
        name: value
        for name, value in (
            ("min_instances", min_instances),
            ("max_instances", max_instances),
            ("target_concurrency", target),
            ("scale_to_zero_after_s", scale_to_zero_after),
            ("capacity_share", capacity_share),
        )
        if value is not None
    }
    try:
        target_app = app or linked_app_id(Path.cwd())
        with connect(api_url, token) as client:
            found = resolve_app(client, target_app)
            path = f"/apps/{quote(str(found['id']), safe='')}/scaling"
            if changes:
                body = client.call("PATCH", path, json_body=changes)
            else:
                body = client.call("GET", path)
    except CliError as error:
        fail(error, as_json)
    if as_json:
        print(json.dumps(body, indent=2))
        return
    if changes:
        console.print(f"[green]Updated the scaling of {escape(str(found.get('slug')))}.[/]")
    console.print(scaling_table(found, body))


def scaling_table(app: dict[str, Any], body: dict[str, Any]) -> Table:
    table = Table(title=f"Scaling of {escape(str(app.get('slug')))} ({escape(str(app['id']))})")
    table.add_column("setting", style="bold")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    share = body["capacity_share"]
    rows = [
        ("min instances", body["min_instances"], "kept running without traffic"),
        ("max instances", body["max_instances"], "never more than this"),
        ("target concurrency", body["target_concurrency"], "in-flight requests per instance"),
        ("scale to zero after", f"{body['scale_to_zero_after_s']}s", "idle time before 0"),
        ("capacity share", f"{share:g}", "of max x target admitted"),
        ("admission limit", body["admission_limit"], "in-flight requests; beyond: 429"),
        ("instances", body["instances"], "ready now"),
        ("state", body["state"], ""),
    ]
    for label, value, meaning in rows:
        table.add_row(label, escape(str(value)), meaning)
    return table


@apps_app.command("limits")
def limits(
    team: Annotated[str, typer.Argument(help="Team id or slug.")],
    max_instances: Annotated[
        str | None,
        typer.Option(
            "--max-instances", metavar="N|none", help="Cap on the instances of all its apps."
        ),
    ] = None,
    max_memory_mb: Annotated[
        str | None,
        typer.Option(
            "--max-memory-mb", metavar="N|none", help="Cap on the memory of all its instances."
        ),
    ] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Show a team's limits; administrators change them with the options."""
    try:
        changes = cap_changes(
            {
                "max_instances": ("--max-instances", max_instances),
                "max_memory_mb": ("--max-memory-mb", max_memory_mb),
            }
        )
        with connect(api_url, token) as client:
            team_id = resolve_team(client, team)
            path = f"/teams/{quote(team_id, safe='')}/limits"
            missing = f"Team not found: {team}."
            if changes:
                body = client.call("PATCH", path, json_body=changes, not_found=missing)
            else:
                body = client.call("GET", path, not_found=missing)
    except CliError as error:
        fail(error, as_json)
    if as_json:
        print(json.dumps(body, indent=2))
        return
    if changes:
        console.print(f"[green]Updated the limits of team {escape(team)}.[/]")
    team_id = str(body["team_id"])
    title = team_id if team == team_id else f"{team} ({team_id})"
    table = Table(title=f"Limits of team {escape(title)}")
    table.add_column("limit", style="bold")
    table.add_column("value", justify="right")
    for label, key in (("max instances", "max_instances"), ("max memory", "max_memory_mb")):
        value = body[key]
        shown = "no cap" if value is None else str(value)
        table.add_row(label, shown + (" MB" if key == "max_memory_mb" and value else ""))
    console.print(table)
