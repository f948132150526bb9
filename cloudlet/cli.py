"""`cloudlet`: run the platform, administer it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.logging import RichHandler
from rich.panel import Panel

from cloudlet.analyze.cli import analyze_command
from cloudlet.apps_cli import apps_app
from cloudlet.bench.cli import bench_app
from cloudlet.lifetime import die_with_parent
from cloudlet.settings import Settings

app = typer.Typer(
    name="cloudlet",
    help="Cloudlet: a self-hosted FastAPI Cloud. Your team keeps `fastapi deploy`.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(bench_app, name="bench")
app.add_typer(apps_app, name="apps")
app.command("analyze")(analyze_command)
console = Console()

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_EMAIL = "admin@cloudlet.localhost"


def _settings(data_dir: Path | None, database_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if database_url is not None:
        values["database_url"] = database_url
    return Settings(**values)  # type: ignore[arg-type]


DataDir = Annotated[
    Path | None, typer.Option(help="Where Cloudlet keeps its state [env: CLOUDLET_DATA_DIR].")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        help="SQLAlchemy URL, e.g. postgresql+asyncpg://... [env: CLOUDLET_DATABASE_URL]."
    ),
]


@app.command()
def up(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    api_host: Annotated[str | None, typer.Option(help="Control plane bind address.")] = None,
    api_port: Annotated[int | None, typer.Option(help="Control plane port.")] = None,
    router_host: Annotated[str | None, typer.Option(help="Router bind address.")] = None,
    router_port: Annotated[int | None, typer.Option(help="Router port.")] = None,
    domain: Annotated[str | None, typer.Option(help="Apps answer on <slug>.<domain>.")] = None,
    demo: Annotated[bool, typer.Option(help="Deploy the bundled demo app at start.")] = False,
) -> None:
    """Run everything on this machine: control plane, dashboard, router, builds, instances."""
    settings = _settings(
        data_dir,
        database_url,
        api_host=api_host,
        api_port=api_port,
        router_host=router_host,
        router_port=router_port,
        domain=domain,
    )
    if demo and not (settings.admin_email and settings.admin_token):
        settings.admin_email = DEMO_EMAIL
        settings.admin_token = _demo_token(settings)
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=True)],
    )
    # Migrations and readiness probes are routine; their INFO lines would bury what matters.
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, demo))


def _demo_token(settings: Settings) -> str:
    """The demo admin's token, kept in the data dir so a restart keeps the same login."""
    path = settings.data_dir / "demo-admin-token"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = "clt_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token


async def _serve(settings: Settings, demo: bool) -> None:
    from cloudlet.api.app import create_app
    from cloudlet.control.platform import Platform

    platform = Platform(settings)
    api = create_app(platform)
    config = uvicorn.Config(
        api,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    router = RouterProcess(settings, platform.feed_socket)
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.05)
    if serving.done():  # start-up failed: uvicorn already said why
        await serving
        raise typer.Exit(1)
    router_task = asyncio.create_task(router.supervise())
    _print_banner(settings, demo)
    if demo:
        from cloudlet.control.localdeploy import deploy_directory

        demo_app, started = await deploy_directory(
            platform, DEMO_EMAIL, "hello", EXAMPLES / "hello", unless_live=True
        )
        state = "building" if started else "serving"
        console.print(
            f"[bold]Demo app[/] {state}: {settings.app_url(demo_app.slug)} "
            f"(watch it on {settings.api_url})"
        )
    try:
        await serving
    finally:
        router_task.cancel()
        await asyncio.gather(router_task, return_exceptions=True)
        await router.stop()


def _print_banner(settings: Settings, demo: bool) -> None:
    cli_json = json.dumps(
        {"base_api_url": f"{settings.api_url}/api/v1", "dashboard_base_url": settings.api_url}
    )
    lines = [
        f"[bold green]Cloudlet is up.[/]  Dashboard: [link]{settings.api_url}[/link]",
        f"Apps answer on {settings.app_url('<app>')}",
        "",
        "Point the FastAPI Cloud CLI here: write the line below to [bold]cli.json[/] in its",
        "config folder (~/.config/fastapi-cli, or $FASTAPI_CLOUD_CLI_CONFIG_DIR), then run",
        "[bold]fastapi login[/] and [bold]fastapi deploy[/].",
    ]
    if demo:
        token_file = (settings.data_dir / "demo-admin-token").resolve()
        lines += ["", f"Admin {settings.admin_email}: sign in with the token in {token_file}"]
    elif settings.admin_email:
        lines += ["", f"Admin {settings.admin_email}: sign in with CLOUDLET_ADMIN_TOKEN."]
    console.print(Panel("\n".join(lines), expand=False))
    # Outside the panel and never wrapped: it is meant to be copied as is.
    console.print(cli_json, soft_wrap=True, markup=False, highlight=False)


class RouterProcess:
    """The router runs as its own process (the data plane must not share the control plane's
    event loop); restarted with back-off if it dies."""

    def __init__(self, settings: Settings, feed_socket: Path) -> None:
        self.settings = settings
        self.feed_socket = feed_socket
        self.process: asyncio.subprocess.Process | None = None

    async def supervise(self) -> None:
        bind = f"{self.settings.router_host}:{self.settings.router_port}"
        delay = 0.5
        while True:
            self.process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "cloudlet.router", "--bind", bind),
                *("--feed", str(self.feed_socket)),
                *(("--sched-batch",) if self.settings.router_sched_batch else ()),
                # If cloudlet up dies, the instances die with it (their zygotes get SIGKILL), so
                # the router has nothing left to drain: it goes the same way.
                preexec_fn=die_with_parent,
            )
            code = await self.process.wait()
            logging.getLogger("cloudlet").error("router exited with %s; restarting", code)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


@users_app.command("create")
def users_create(
    email: str,
    admin: Annotated[bool, typer.Option(help="Make the user an administrator.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user with a personal team, and print an API token for them (shown once)."""
    settings = _settings(data_dir, database_url)
    token = asyncio.run(_create_user(settings, email, admin))
    console.print(f"Created {email}. API token (shown once): [bold]{token}[/]")
    console.print("Sign in to the dashboard with it; the CLI logs in with `fastapi login`.")


async def _create_user(settings: Settings, email: str, admin: bool) -> str:
    from sqlalchemy import select

    from cloudlet.api.login import issue_user_token
    from cloudlet.control.platform import ensure_personal_team
    from cloudlet.store.db import create_engine, migrate, sessionmaker
    from cloudlet.store.models import User

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        async with sessionmaker(engine)() as session:
            user = await session.scalar(select(User).where(User.email == email))
            if user is not None:
                console.print(f"[red]{email} exists already.[/]")
                raise typer.Exit(1)
            user = User(email=email, is_admin=admin)
            session.add(user)
            await session.flush()
            await ensure_personal_team(session, user)
            value, _ = await issue_user_token(
                session, user, "created by cloudlet users create", 365
            )
            await session.commit()
            return value
    finally:
        await engine.dispose()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
