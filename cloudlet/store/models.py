"""The platform's tables. Ids are strings end to end: the CLI rejects integer ids."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from cloudlet.scaling import DEFAULT as SCALING


def new_id() -> str:
    return secrets.token_hex(8)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserToken(Base):
    """A user's API token (from device login, or given to an admin at bootstrap)."""

    __tablename__ = "user_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_personal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Caps over all the team's apps together (None = no cap); see cloudlet.scaling.TeamLimits.
    max_instances: Mapped[int | None] = mapped_column(Integer)
    max_memory_mb: Mapped[int | None] = mapped_column(Integer)


class TeamMember(Base):
    __tablename__ = "team_members"
    team_id: Mapped[str] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(20), default="owner")


class DeviceAuthorization(Base):
    __tablename__ = "device_authorizations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    client_id: Mapped[str] = mapped_column(String(100))
    # pending -> approved | denied -> consumed
    status: Mapped[str] = mapped_column(String(20), default="pending")
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class App(Base):
    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("team_id", "name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    # Global: the slug is the app's hostname.
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    directory: Mapped[str | None] = mapped_column(String(500))
    # The deployment whose revision serves traffic (None until the first success).
    live_deployment_id: Mapped[str | None] = mapped_column(String(32))
    # Scaling settings (cloudlet.scaling.Scaling; bounds there).
    min_instances: Mapped[int] = mapped_column(
        Integer, default=SCALING.min_instances, server_default=str(SCALING.min_instances)
    )
    max_instances: Mapped[int] = mapped_column(
        Integer, default=SCALING.max_instances, server_default=str(SCALING.max_instances)
    )
    target_concurrency: Mapped[int] = mapped_column(
        Integer, default=SCALING.target_concurrency, server_default=str(SCALING.target_concurrency)
    )
    scale_to_zero_after_s: Mapped[int] = mapped_column(
        Integer,
        default=SCALING.scale_to_zero_after_s,
        server_default=str(SCALING.scale_to_zero_after_s),
    )
    capacity_share: Mapped[float] = mapped_column(
        Float, default=SCALING.capacity_share, server_default=str(SCALING.capacity_share)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_app_created", "app_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(50), default="waiting_upload", index=True)
    archive_size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    upload_token_hash: Mapped[str | None] = mapped_column(String(64))
    uploaded: Mapped[bool] = mapped_column(Boolean, default=False)
    # The source of a redeploy (env change): build from that deployment's archive.
    source_deployment_id: Mapped[str | None] = mapped_column(String(32))
    # What the build produced, so a restart can bring the revision back from the store alone.
    build_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The analyzer's report on the uploaded source (cloudlet.control.analysis); None: not run.
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    failure_code: Mapped[str | None] = mapped_column(String(100))
    failure_title: Mapped[str | None] = mapped_column(String(200))
    failure_message: Mapped[str | None] = mapped_column(Text)
    failure_hint: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BuildLogLine(Base):
    __tablename__ = "build_log_lines"
    __table_args__ = (UniqueConstraint("deployment_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnvironmentVariable(Base):
    __tablename__ = "environment_variables"
    __table_args__ = (UniqueConstraint("app_id", "name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    # Every value is encrypted at rest; secrets are additionally never returned.
    value_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    is_secret: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when an integration manages the variable: users may not change it.
    managed_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DeployToken(Base):
    __tablename__ = "deploy_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomDomain(Base):
    __tablename__ = "custom_domains"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    status: Mapped[str] = mapped_column(String(40), default="internal_dcv_pending")
    is_using_pre_validation: Mapped[bool] = mapped_column(Boolean, default=False)
    verification_token: Mapped[str] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    setup_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    setup_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConnectedResource(Base):
    __tablename__ = "connected_resources"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(32))
    provider_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    console_url: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
