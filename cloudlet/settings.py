"""Platform settings: every default works on a laptop with nothing else installed."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDLET_", extra="ignore")

    data_dir: Path = Path(".cloudlet")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default is SQLite in the data dir. "
        "postgresql+asyncpg://... works too.",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    router_host: str = "127.0.0.1"
    router_port: int = 8080
    # Apps answer on http://<slug>.<domain>:<router_port>.
    domain: str = "localhost"
    # What users type into a browser; derived from the binds when unset.
    public_api_url: str | None = None
    public_app_scheme: str = "http"

    admin_email: str | None = None
    admin_token: str | None = None
    secret_key: str | None = Field(
        default=None,
        description="Fernet key for secrets at rest; generated in the data dir if unset.",
    )

    user_token_ttl_days: int = 30
    device_code_ttl_s: int = 900
    max_archive_bytes: int = 100 * 1024 * 1024
    max_unpacked_bytes: int = 100 * 1024 * 1024
    max_archive_files: int = 10_000
    build_timeout_s: float = 900.0
    memory_limit_mb: int = 512
    # Instances a new deployment starts with (at least the app's min_instances); the
    # autoscaler takes over once it serves.
    instances_per_app: int = 1
    # Requests the router may hold per app while an instance starts; more get 503.
    hold_queue: int = 1000
    # How often the autoscaler decides (seconds).
    autoscale_tick_s: float = 1.0
    # Seconds an app at zero instances keeps its zygote (imported, not serving, so the next
    # request needs one fork); 0 keeps it for as long as the app is live.
    zygote_idle_s: float = 0.0
    # Concurrent builds; 0 leaves uploads queued (API tests use that).
    build_workers: int = 2
    drain_s: float = 30.0
    log_retention_days: int = 14
    # SCHED_BATCH for instances (and their zygotes): fewer context switches per request when
    # they share a core with the router, but a CPU-bound neighbour app then loses 22-27 % of
    # its throughput (reference/dataplane.md), so off by default.
    sched_batch: bool = False
    # SCHED_BATCH for the router: it does not preempt an instance on every wake-up and
    # drains all ready connections in one go (0.05 instead of 2-3 context switches per
    # request; `cloudlet bench router`). Its cost is a few ms more latency for a request
    # that arrives while an app saturates the core.
    router_sched_batch: bool = True
    # One uv cache shared by every build; defaults to <data dir>/uv-cache.
    uv_cache: Path | None = None
    # DNS servers ("host" or "host:port") for custom-domain checks; the system's when empty.
    dns_nameservers: list[str] = Field(default_factory=list)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'cloudlet.db').resolve()}"

    @property
    def api_url(self) -> str:
        return (self.public_api_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def app_url(self, slug: str) -> str:
        port = "" if self.router_port in (80, 443) else f":{self.router_port}"
        return f"{self.public_app_scheme}://{slug}.{self.domain}{port}"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def builds_dir(self) -> Path:
        return self.data_dir / "revisions"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def uv_cache_dir(self) -> Path:
        return self.uv_cache or self.data_dir / "uv-cache"
