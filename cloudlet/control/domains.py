"""Custom-domain verification: a TXT record at `_fc-dcv.<domain>` proves ownership."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dns.asyncresolver
import dns.exception
import dns.resolver
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from cloudlet.statuses import DOMAIN_FAILED, DOMAIN_LIVE
from cloudlet.store.models import CustomDomain

if TYPE_CHECKING:
    from cloudlet.control.platform import Platform

log = logging.getLogger("cloudlet.domains")

CHECK_EVERY_S = 60.0
GIVE_UP_AFTER = timedelta(hours=72)


class DomainVerifier:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="domain-verifier")

    async def stop(self) -> None:
        tasks = [t for t in [self._task, *self._pending] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def check_soon(self, domain_id: str) -> None:
        task = asyncio.create_task(self.check(domain_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            async with self.platform.sessions() as session:
                ids = (
                    await session.scalars(
                        select(CustomDomain.id).where(
                            CustomDomain.status.not_in(DOMAIN_LIVE | DOMAIN_FAILED)
                        )
                    )
                ).all()
            for domain_id in ids:
                await self.check(domain_id)

    def _resolver(self) -> dns.asyncresolver.Resolver:
        servers = self.platform.settings.dns_nameservers
        if not servers:
            return dns.asyncresolver.Resolver()
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [s.split(":")[0] for s in servers]
        port = servers[0].partition(":")[2]
        if port:
            resolver.port = int(port)
        return resolver

    async def lookup(self, name: str) -> tuple[list[str] | None, str | None]:
        """TXT strings at `name`, or (None, why) when DNS could not answer."""
        try:
            answer = await self._resolver().resolve(name, "TXT", lifetime=5.0)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return [], None
        except (dns.exception.DNSException, OSError) as exc:
            return None, f"DNS lookup of {name} failed: {exc.__class__.__name__}: {exc}"
        return [b"".join(r.strings).decode(errors="replace") for r in answer], None

    async def check(self, domain_id: str) -> None:
        # The lookup may take seconds: it runs outside any transaction, and the domain may be
        # removed meanwhile (then there is nothing left to record).
        async with self.platform.sessions() as session:
            domain = await session.get(CustomDomain, domain_id)
            if domain is None or domain.status in DOMAIN_LIVE:
                return
            name, token = domain.name, domain.verification_token
        expected = f"cloudlet-verification={token}"
        values, error = await self.lookup(f"_fc-dcv.{name}")
        now = datetime.now(UTC)
        async with self.platform.sessions() as session:
            domain = await session.get(CustomDomain, domain_id)
            if domain is None:
                return
            domain.setup_checked_at = now
            started = domain.setup_started_at or domain.created_at
            if values is None:
                # Cannot tell: stay pending and say why, instead of claiming the record is missing.
                domain.last_error = error
            elif expected in values:
                domain.status = "origin_setup_success"
                domain.last_error = None
            elif values:
                domain.status = "internal_dcv_invalid"
                domain.last_error = f"_fc-dcv.{name} has TXT {values!r}, expected {expected!r}"
            else:
                domain.status = "internal_dcv_missing"
                domain.last_error = f"No TXT record at _fc-dcv.{name} yet."
            if domain.status not in DOMAIN_LIVE and now - started > GIVE_UP_AFTER:
                domain.status = "internal_dcv_timeout"
            live = domain.status in DOMAIN_LIVE
            try:
                await session.commit()
            except StaleDataError:  # removed between our read and this write
                return
        if live:
            log.info("custom domain %s verified", name)
            await self.platform.publish_routes()
