"""Custom domains are verified by a real DNS lookup (against a DNS server of the test's own)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rrset
import pytest
from fastapi.testclient import TestClient

from cloudlet.api.app import create_app
from cloudlet.control.platform import Platform
from cloudlet.store.models import App, Deployment

from ..conftest import ADMIN_TOKEN, test_settings
from .conftest import Api


class TinyDns:
    """Answers TXT queries from a dict over UDP on 127.0.0.1; NXDOMAIN for anything else."""

    def __init__(self) -> None:
        self.records: dict[str, str] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            value = self.records.get(question.name.to_text().rstrip("."))
            if value is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                response.answer.append(
                    dns.rrset.from_text(question.name, 60, "IN", "TXT", f'"{value}"')
                )
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dns_server() -> Iterator[TinyDns]:
    server = TinyDns()
    yield server
    server.close()


@pytest.fixture
def dns_api(
    short_tmp: Path, database_url: str, dns_server: TinyDns
) -> Iterator[tuple[Api, Platform]]:
    settings = test_settings(
        short_tmp, database_url, dns_nameservers=[f"127.0.0.1:{dns_server.port}"]
    )
    platform = Platform(settings)
    with TestClient(create_app(platform), base_url="http://127.0.0.1:8000") as client:
        yield Api(client, ADMIN_TOKEN), platform


def wait_status(api: Api, app_id: str, domain_id: str, want: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        domains = api.get(f"/apps/{app_id}/custom-domains").json()["data"]
        domain: dict[str, Any] = next(d for d in domains if d["id"] == domain_id)
        if domain["status"] == want:
            return domain
        assert time.monotonic() < deadline, domain
        time.sleep(0.1)


def test_verified_by_txt_record_then_routed(
    dns_api: tuple[Api, Platform], dns_server: TinyDns
) -> None:
    api, platform = dns_api
    app = api.create_app()
    domain = api.post(f"/apps/{app['id']}/custom-domains", json={"name": "shop.example.com"}).json()
    missing = wait_status(api, app["id"], domain["id"], "internal_dcv_missing")
    assert missing["setup_in_progress"] and not missing["setup_successful"]

    txt = next(r for r in domain["dns_records"] if r["type"] == "TXT")
    dns_server.records[txt["name"]] = "something-else"
    api.post(f"/apps/{app['id']}/custom-domains/{domain['id']}/restart-setup")
    wait_status(api, app["id"], domain["id"], "internal_dcv_invalid")

    dns_server.records[txt["name"]] = txt["value"]
    api.post(f"/apps/{app['id']}/custom-domains/{domain['id']}/restart-setup")
    live = wait_status(api, app["id"], domain["id"], "origin_setup_success")
    assert live["setup_successful"] and not live["setup_failed"]

    # Once the app serves a revision, the router is told to route the domain to it.
    async def go_live() -> dict[str, str]:
        async with platform.sessions() as session:
            row = await session.get(App, app["id"])
            assert row is not None
            deployment = Deployment(app_id=row.id, slug="d", status="success")
            session.add(deployment)
            await session.flush()
            row.live_deployment_id = deployment.id
            await session.commit()
        return (await platform.route_table()).hosts

    assert api.client.portal is not None
    hosts = api.client.portal.call(go_live)
    assert hosts["shop.example.com"] == hosts[f"{app['slug']}.localhost"]


def test_unresolvable_dns_keeps_pending_and_says_why(short_tmp: Path, database_url: str) -> None:
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))  # bound, never answers: every lookup times out
    settings = test_settings(
        short_tmp, database_url, dns_nameservers=[f"127.0.0.1:{dead.getsockname()[1]}"]
    )
    with TestClient(create_app(Platform(settings)), base_url="http://127.0.0.1:8000") as client:
        api = Api(client, ADMIN_TOKEN)
        app = api.create_app()
        domain = api.post(
            f"/apps/{app['id']}/custom-domains", json={"name": "x.example.org"}
        ).json()
        deadline = time.monotonic() + 30
        while True:
            current = api.get(f"/apps/{app['id']}/custom-domains").json()["data"][0]
            if current["setup_checked_at"]:
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert current["id"] == domain["id"]
        assert current["status"] == "internal_dcv_pending"
        assert "DNS lookup" in current["last_error"]
    dead.close()
