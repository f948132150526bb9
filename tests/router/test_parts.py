"""The router's parts on their own: chunked framing, head rewriting, the route table and
the feed (a real publisher and client over a Unix socket in this process)."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path

import pytest

from cloudlet.router.chunked import ChunkedError, ChunkedScanner
from cloudlet.router.feed import NO_SCALE, Counts, FeedClient, FeedPublisher, RouteTable
from cloudlet.router.heads import forward_head, forwarded_lines, host_key, strip_lines

BODY = b"4\r\nWiki\r\n6;name=value\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n"


def scan_in_pieces(data: bytes, cuts: list[int]) -> int:
    """Feed ``data`` split at ``cuts``; return the end offset in ``data``."""
    scanner = ChunkedScanner()
    start = 0
    for cut in [*cuts, len(data)]:
        end = scanner.scan(data[start:cut])
        if end >= 0:
            return start + end
        start = cut
    return -1


def test_chunked_end_is_found_however_the_bytes_are_split() -> None:
    data = BODY + b"GET /next HTTP/1.1\r\n"
    assert scan_in_pieces(data, []) == len(BODY)
    for cut in range(1, len(BODY)):
        assert scan_in_pieces(data, [cut]) == len(BODY), cut
    assert scan_in_pieces(data, list(range(1, len(data)))) == len(BODY)


def test_chunked_body_that_continues() -> None:
    scanner = ChunkedScanner()
    assert scanner.scan(b"10\r\n0123456789") == -1
    assert scanner.scan(b"abcdef\r\n") == -1
    assert scanner.scan(b"0\r\n\r\n") == 5
    assert scanner.done


@pytest.mark.parametrize(
    "data",
    [
        b"zz\r\n",
        b"-1\r\n",
        b"0x5\r\nhello\r\n",
        b" 5\r\nhello\r\n",
        b"5\nhello\r\n",  # bare LF
        b"5\r\nhelloXX",  # no CRLF after data
        b"5\r\nhello\r\n0\r\nbad\rtrailer\r\n\r\n",
        b"1" * 5000,  # endless size line
    ],
)
def test_bad_chunked_framing_is_refused(data: bytes) -> None:
    with pytest.raises(ChunkedError):
        ChunkedScanner().scan(data)


def test_host_key() -> None:
    assert host_key(b"App.LocalHost:8080") == b"app.localhost"
    assert host_key(b"app.localhost.") == b"app.localhost"
    assert host_key(b" app.localhost ") == b"app.localhost"
    assert host_key(b"[::1]:8080") == b"[::1]"


def test_forward_head_inserts_lines_before_the_end() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a.localhost\r\nAccept: */*\r\n\r\n"
    out = forward_head(
        head,
        forwarded_lines(b"10.1.2.3"),
        b"a.localhost",
        traceparent=False,
        prior_xff=None,
        strip=False,
        client_ip=b"10.1.2.3",
    )
    assert out == (
        b"GET / HTTP/1.1\r\nHost: a.localhost\r\nAccept: */*\r\n"
        b"x-forwarded-proto: http\r\nx-forwarded-for: 10.1.2.3\r\n"
        b"x-forwarded-host: a.localhost\r\n\r\n"
    )


def test_forward_head_replaces_owned_headers() -> None:
    head = (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-proto: https\r\n"
        b"X-Forwarded-For: 2.2.2.2\r\nX-Forwarded-Host: evil\r\n\r\n"
    )
    out = forward_head(
        head,
        forwarded_lines(b"3.3.3.3"),
        b"a",
        traceparent=True,
        prior_xff=[b"1.1.1.1", b"2.2.2.2"],
        strip=True,
        client_ip=b"3.3.3.3",
    )
    lines = out.split(b"\r\n")
    assert lines[:2] == [b"GET / HTTP/1.1", b"Host: a"]
    assert b"x-forwarded-for: 1.1.1.1, 2.2.2.2, 3.3.3.3" in lines
    assert b"x-forwarded-proto: http" in lines
    assert b"x-forwarded-host: a" in lines
    assert sum(line.lower().startswith(b"x-forwarded") for line in lines) == 3
    assert any(line.startswith(b"traceparent: 00-") for line in lines)
    assert out.endswith(b"\r\n\r\n")


def test_strip_lines_keeps_the_rest() -> None:
    head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"
    assert strip_lines(head, frozenset((b"a",))) == b"GET / HTTP/1.1\r\nB: 2\r\n\r\n"


def test_route_table_round_trip_and_validation() -> None:
    table = RouteTable(
        generation=3,
        hosts={"a.localhost": "r1"},
        revisions={
            "r1": {
                "app": "a",
                "instances": [{"id": "i1", "socket": "/s.sock"}],
                "scale": {"limit": 70, "hold": 10.0, "queue": 100},
            }
        },
    )
    data = json.loads(json.dumps(table.to_json()))
    assert RouteTable.from_json(data) == table
    # A table without scale settings (an older control plane) means: no limit, no hold.
    del data["revisions"]["r1"]["scale"]
    assert RouteTable.from_json(data).revisions["r1"]["scale"] == NO_SCALE
    for bad in (
        {"revisions": {"r1": {"app": "a", "instances": [], "scale": {"limit": -1}}}},
        {"revisions": {"r1": {"app": "a", "instances": [], "scale": {"hold": "1"}}}},
        {"revisions": {"r1": {"app": "a", "instances": [], "scale": []}}},
        {"generation": "1"},
        {"hosts": {"a": 1}},
        {"revisions": {"r1": {"app": "a", "instances": [{"id": "i1"}]}}},
        {"revisions": {"r1": {"instances": []}}},
    ):
        with pytest.raises(ValueError):
            RouteTable.from_json(bad)


@pytest.fixture
def feed_path() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="clf-", dir="/tmp"))
    yield folder / "feed.sock"  # type: ignore[misc]
    shutil.rmtree(folder, ignore_errors=True)


def test_feed_applies_acks_and_reports(feed_path: Path) -> None:
    async def scenario() -> None:
        demanded: list[str] = []
        publisher = FeedPublisher(feed_path, on_demand=demanded.append)
        await publisher.start()
        applied: list[RouteTable] = []
        counts = {"r1": 2}

        def stats() -> Counts:
            return {
                "inflight": dict(counts),
                "held": {"r1": 3},
                "requests": {"r1": 7},
                "rejected": {"r1": 1},
            }

        client = FeedClient(feed_path, applied.append, stats, interval=0.05)
        runner = asyncio.create_task(client.run())
        try:
            table = RouteTable(
                hosts={"a.localhost": "r1"}, revisions={"r1": {"app": "a", "instances": []}}
            )
            generation = publisher.publish(table)
            assert await publisher.wait_applied(generation, 30, min_routers=1)
            assert applied[-1].generation == generation
            assert applied[-1].hosts == {"a.localhost": "r1"}
            assert publisher.inflight() == {"r1": 2}
            assert publisher.requests() == {"r1": 7}
            assert publisher.held() == {"r1": 3}
            assert publisher.rejected() == {"r1": 1}
            client.demand("r1")
            while not demanded:  # noqa: ASYNC110 - waiting for the message
                await asyncio.sleep(0.01)
            assert demanded == ["r1"]
            counts["r1"] = 0
            while publisher.inflight() != {"r1": 0}:  # noqa: ASYNC110 - polling a report
                await asyncio.sleep(0.01)
            assert publisher.publish(table) > generation
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await publisher.close()

    asyncio.run(scenario())
    assert not feed_path.exists()  # close() removed the socket file


def test_wait_applied_with_no_router(feed_path: Path) -> None:
    async def scenario() -> None:
        publisher = FeedPublisher(feed_path)
        await publisher.start()
        try:
            generation = publisher.publish(RouteTable())
            assert await publisher.wait_applied(generation, 1)  # nobody to wait for
            assert not await publisher.wait_applied(generation, 0.2, min_routers=1)
        finally:
            await publisher.close()

    asyncio.run(scenario())


def test_publisher_refuses_to_steal_a_live_socket(feed_path: Path) -> None:
    async def scenario() -> None:
        first = FeedPublisher(feed_path)
        await first.start()
        try:
            with pytest.raises(RuntimeError):
                await FeedPublisher(feed_path).start()
        finally:
            await first.close()
        # A socket file left by a dead publisher is replaced.
        import socket

        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(feed_path))
        stale.close()
        second = FeedPublisher(feed_path)
        await second.start()
        await second.close()

    asyncio.run(scenario())


def test_feed_client_refuses_a_bad_table_and_keeps_the_last(feed_path: Path) -> None:
    """A raw control plane on the socket: a bad table gets an error, not an ack."""

    async def scenario() -> None:
        lines: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        writers: list[asyncio.StreamWriter] = []

        async def control_plane(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            while line := await reader.readline():
                await lines.put(json.loads(line))

        server = await asyncio.start_unix_server(control_plane, str(feed_path))
        applied: list[RouteTable] = []
        client = FeedClient(
            feed_path,
            applied.append,
            lambda: {"inflight": {}, "held": {}, "requests": {}, "rejected": {}},
            interval=60,
        )
        runner = asyncio.create_task(client.run())
        try:
            hello = await asyncio.wait_for(lines.get(), 30)
            assert hello["type"] == "hello"
            good = RouteTable(
                generation=5,
                hosts={"a": "r1"},
                revisions={"r1": {"app": "a", "instances": [], "scale": NO_SCALE}},
            )
            writers[0].write(json.dumps({"type": "table", **good.to_json()}).encode() + b"\n")
            ack = await asyncio.wait_for(lines.get(), 30)
            assert (ack["type"], ack["generation"]) == ("ack", 5)
            writers[0].write(b'{"type":"table","generation":6,"hosts":{"a":1}}\n')
            error = await asyncio.wait_for(lines.get(), 30)
            assert (error["type"], error["generation"]) == ("error", 6)
            assert applied == [good]
            assert client.generation == 5
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            server.close()

    asyncio.run(scenario())
