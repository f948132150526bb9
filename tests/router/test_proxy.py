"""The router in front of real uvicorn instances: routing, headers, pooling, streaming,
WebSockets and HTTP edge cases. Everything here shares one router and two instances."""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import httpx
from websockets.sync.client import connect as ws_connect

from .conftest import WAIT, Cluster, Router, pattern_bytes, wait_until

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")


def read_response(f: BinaryIO, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response from a raw connection."""
    status_line = f.readline()
    assert status_line, "connection closed before a response"
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if head or status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if "content-length" in headers:
        return status, headers, f.read(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int(f.readline().split(b";")[0], 16):
            body += f.read(size)
            f.readline()
        while f.readline() not in (b"\r\n", b""):
            pass
        return status, headers, body
    return status, headers, f.read()


def header_lists(echo: dict[str, object]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for name, value in echo["headers"]:  # type: ignore[attr-defined]
        out[name].append(value)
    return out


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_routes_by_host(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    for host in ("a.localhost", "A.LocalHost:8080", "a.localhost."):
        with router.client(host) as client:
            r = client.get("/")
            assert r.status_code == 200, host
            assert r.json()["revision"] == "r1"


def test_unknown_host_gets_a_404_page_naming_it(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    with router.client("nope<b>.example") as client:
        r = client.get("/some/path")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert "nope&lt;b&gt;.example" in r.text
        assert "<b>" not in r.text
        # The connection stays usable: the whole request had been read.
        r = client.get("/", headers={"Host": "a.localhost"})
        assert r.status_code == 200


def test_503_when_no_instance_is_ready(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    with router.client("empty.localhost") as client:
        r = client.get("/")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.text


def test_forwarded_headers_and_traceparent(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    with router.client() as client:
        first = header_lists(client.get("/echo").json())
        second = header_lists(client.get("/echo").json())
    assert first["host"] == ["a.localhost"]
    assert first["x-forwarded-for"] == ["127.0.0.1"]
    assert first["x-forwarded-proto"] == ["http"]
    assert first["x-forwarded-host"] == ["a.localhost"]
    assert len(first["traceparent"]) == 1
    assert TRACEPARENT.match(first["traceparent"][0])
    assert first["traceparent"] != second["traceparent"]


def test_client_forwarded_headers_are_appended_or_replaced(
    shared: tuple[Cluster, Router],
) -> None:
    _, router = shared
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with router.client() as client:
        echo = client.get(
            "/echo",
            headers={
                "X-Forwarded-For": "203.0.113.7",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "bank.example",
                "traceparent": incoming,
            },
        ).json()
    headers = header_lists(echo)
    assert headers["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-forwarded-host"] == ["a.localhost"]
    assert headers["traceparent"] == [incoming]


def test_instance_connections_are_reused(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    seen: dict[str, set[int]] = defaultdict(set)
    for _ in range(2):  # two client connections share the pool
        with router.client() as client:
            for _ in range(20):
                echo = client.get("/echo").json()
                seen[echo["instance"]].add(echo["conn"])
    assert set(seen) == {"i1", "i2"}  # idle instances are used in turn
    assert all(len(conns) == 1 for conns in seen.values()), seen


def test_least_in_flight_instance_is_picked(shared: tuple[Cluster, Router]) -> None:
    c, router = shared
    started, release = c.marker("started"), c.marker("release")

    def held() -> httpx.Response:
        with router.client() as client:
            return client.get("/hold", params={"started": str(started), "release": str(release)})

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(held)
        wait_until(lambda: started.exists() and started.read_text(), "the held request")
        busy = started.read_text()
        with router.client() as client:
            served = {client.get("/").json()["instance"] for _ in range(10)}
        assert served == {"i1", "i2"} - {busy}
        release.touch()
        r = future.result(WAIT)
    assert r.status_code == 200
    assert r.json()["instance"] == busy


def test_large_chunked_upload_is_streamed(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    block = os.urandom(1 << 20)
    count = 50
    expected = hashlib.sha256()
    for i in range(count):
        expected.update(block[i:] + block[:i])

    def body() -> bytes:
        for i in range(count):
            yield block[i:] + block[:i]

    with router.client() as client:
        r = client.post("/hash", content=body())
    assert r.status_code == 200
    assert r.json()["size"] == count << 20
    assert r.json()["sha256"] == expected.hexdigest()


def test_content_length_upload(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    data = os.urandom(20 << 20)
    with router.client() as client:
        r = client.post("/hash", content=data)
        assert r.json() == {**r.json(), "size": len(data), "sha256": sha(data)}
        # and the connection goes on
        assert client.post("/hash", content=b"x").json()["sha256"] == sha(b"x")


def test_large_streamed_response(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    size = 50 << 20
    expected = hashlib.sha256()
    for chunk in pattern_bytes(size):
        expected.update(chunk)
    got = hashlib.sha256()
    received = 0
    with router.client() as client, client.stream("GET", "/big", params={"size": size}) as r:
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked"
        for chunk in r.iter_raw():
            got.update(chunk)
            received += len(chunk)
    assert received == size
    assert got.hexdigest() == expected.hexdigest()


def test_websocket_echo(shared: tuple[Cluster, Router]) -> None:
    c, router = shared
    sock = router.connect()
    with ws_connect(
        f"ws://a.localhost:{router.port}/ws", sock=sock, proxy=None, max_size=None
    ) as ws:
        ws.send("hello")
        assert ws.recv(WAIT) == "hello"
        payload = os.urandom(3 << 20)
        ws.send(payload)
        assert ws.recv(WAIT) == payload
    # The upgraded connection counted as in flight until it closed.
    assert c.publisher is not None
    wait_until(lambda: c.publisher.inflight().get("r1") == 0, "in-flight back to 0")


def test_pipelined_requests_are_answered_in_order(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    with router.connect() as s, s.makefile("rb") as f:
        s.sendall(
            b"GET / HTTP/1.1\r\nHost: a.localhost\r\n\r\n"
            b"POST /hash HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /hash HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nhe\r\n3;ext=1\r\nllo\r\n0\r\nX-Trailer: 1\r\n\r\n"
            b"GET /x HTTP/1.1\r\nHost: unknown.example\r\n\r\n"
            b"\r\nGET /echo HTTP/1.1\r\nHost: a.localhost\r\n\r\n"
        )
        status, _, body = read_response(f)
        assert status == 200 and b"instance" in body
        status, _, body = read_response(f)
        assert status == 200 and sha(b"hello").encode() in body
        status, _, body = read_response(f)
        assert status == 200 and sha(b"hello").encode() in body
        status, _, body = read_response(f)
        assert status == 404
        status, _, body = read_response(f)
        assert status == 200 and b"/echo" not in body and b"x-forwarded-for" in body


def test_expect_100_continue_passes_through(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    with router.connect() as s, s.makefile("rb") as f:
        s.sendall(
            b"POST /hash HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        status, _, _ = read_response(f)
        assert status == 100
        s.sendall(b"hello")
        status, _, body = read_response(f)
        assert status == 200 and sha(b"hello").encode() in body


def test_head_204_and_304_have_no_body(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    with router.connect() as s, s.makefile("rb") as f:
        s.sendall(b"HEAD /big?size=100000 HTTP/1.1\r\nHost: a.localhost\r\n\r\n")
        status, _, body = read_response(f, head=True)
        assert status == 200 and body == b""
        for code in (204, 304):
            s.sendall(b"GET /status/%d HTTP/1.1\r\nHost: a.localhost\r\n\r\n" % code)
            status, _, _ = read_response(f)
            assert status == code
        # Every response ended where it should: the connection is still in step.
        s.sendall(b"GET /big?size=10 HTTP/1.1\r\nHost: a.localhost\r\n\r\n")
        status, _, body = read_response(f)
        assert status == 200 and body == bytes(range(10))
        # HEAD for an unknown host: the router's own answer has no body either.
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: unknown.example\r\n\r\n")
        status, headers, body = read_response(f, head=True)
        assert status == 404 and int(headers["content-length"]) > 0
        s.sendall(b"GET /big?size=3 HTTP/1.1\r\nHost: a.localhost\r\n\r\n")
        assert read_response(f)[2] == bytes(range(3))


def _rejected(router: Router, request: bytes) -> tuple[int, bytes]:
    with router.connect() as s, s.makefile("rb") as f:
        s.sendall(request)
        status, _, _ = read_response(f)
        return status, f.read()  # then the router closes the connection


def test_malformed_requests_get_400_and_close(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    bad = [
        b"GET / HTTP/1.1\r\nHost: a.localhost\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: a.localhost\r\nHost: b.localhost\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a.localhost\n\n",  # bare LF
        b"POST /hash HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /hash HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 1\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ]
    for request in bad:
        assert _rejected(router, request) == (400, b""), request


def test_oversized_head_gets_431(shared: tuple[Cluster, Router]) -> None:
    _, router = shared
    request = b"GET / HTTP/1.1\r\nHost: a.localhost\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    assert _rejected(router, request) == (431, b"")


def test_client_leaving_mid_request_closes_the_instance_connection(
    shared: tuple[Cluster, Router],
) -> None:
    c, router = shared
    started, marker = c.marker("started"), c.marker("partial")
    s = router.connect()
    s.sendall(
        b"POST /partial?marker=%s&started=%s HTTP/1.1\r\nHost: a.localhost\r\n"
        b"Content-Length: 1000000\r\n\r\n"
        % (str(marker).encode(), str(started).encode())
        + b"x" * 1000
    )
    wait_until(started.exists, "the request to reach the app")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    wait_until(lambda: marker.exists() and marker.read_text(), "the app to see the disconnect")
    assert marker.read_text() == "disconnected"
    assert c.publisher is not None
    wait_until(lambda: c.publisher.inflight().get("r1") == 0, "in-flight back to 0")
    with router.client() as client:
        for _ in range(4):
            assert client.get("/").status_code == 200
