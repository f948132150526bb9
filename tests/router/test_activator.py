"""The router as activator and admission controller: requests to an app with no ready
instance wait (bounded) while one starts; beyond an app's admission limit, 429."""

from __future__ import annotations

import hashlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from cloudlet.router.feed import ScaleSpec

from .conftest import WAIT, Cluster, make_table, pattern_bytes, wait_until

HOLD: ScaleSpec = {"limit": 0, "hold": WAIT, "queue": 10}


def test_request_at_zero_is_held_then_released_to_the_new_instance(cluster: Cluster) -> None:
    publisher = cluster.start_publisher()
    router = cluster.router()
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": []}, HOLD))
    body = b"".join(pattern_bytes(1024 * 1024))

    def get() -> httpx.Response:
        with router.client() as client:
            return client.get("/")

    def post() -> httpx.Response:
        with router.client() as client:
            return client.post("/hash", content=body)

    with ThreadPoolExecutor(2) as pool:
        held_get = pool.submit(get)
        held_post = pool.submit(post)  # its body arrives while it waits
        wait_until(lambda: publisher.held().get("r1") == 2, "two held requests")
        assert publisher.demanded and set(publisher.demanded) == {"r1"}
        assert not held_get.done() and not held_post.done()
        instance = cluster.instance("k1", "r1")
        cluster.publish(make_table({"a.localhost": "r1"}, {"r1": [instance]}, HOLD))
        first = held_get.result(WAIT)
        assert first.status_code == 200
        assert first.json()["instance"] == "k1"
        second = held_post.result(WAIT)
        assert second.status_code == 200
        assert second.json()["sha256"] == hashlib.sha256(body).hexdigest()
        assert second.json()["size"] == len(body)
    wait_until(lambda: not publisher.held().get("r1"), "nothing held any more")


def test_hold_ends_with_503_and_retry_after(cluster: Cluster) -> None:
    cluster.start_publisher()
    router = cluster.router()
    short: ScaleSpec = {"limit": 0, "hold": 0.5, "queue": 10}
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": []}, short))
    with router.client() as client:
        r = client.get("/")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        # The connection stays usable.
        assert client.get("/").status_code == 503


def test_full_queue_gets_503_at_once_and_a_table_without_hold_answers_the_rest(
    cluster: Cluster,
) -> None:
    publisher = cluster.start_publisher()
    router = cluster.router()
    one: ScaleSpec = {"limit": 0, "hold": WAIT, "queue": 1}
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": []}, one))

    def get() -> httpx.Response:
        with router.client() as client:
            return client.get("/")

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(get)
        wait_until(lambda: publisher.held().get("r1") == 1, "the held request")
        overflow = get()  # the queue holds one: this one is refused at once
        assert overflow.status_code == 503
        assert overflow.headers["retry-after"] == "1"
        wait_until(lambda: publisher.rejected().get("r1") == 1, "the rejection counted")
        # The control plane gives up on starting an instance (hold 0): the waiting
        # request is answered now rather than at the end of its hold.
        refuse: ScaleSpec = {"limit": 0, "hold": 0.0, "queue": 1}
        cluster.publish(make_table({"a.localhost": "r1"}, {"r1": []}, refuse))
        assert waiting.result(WAIT).status_code == 503


def test_client_leaving_while_held_leaves_the_queue(cluster: Cluster) -> None:
    publisher = cluster.start_publisher()
    router = cluster.router()
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": []}, HOLD))
    sock = router.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: a.localhost\r\n\r\n")
    wait_until(lambda: publisher.held().get("r1") == 1, "the held request")
    sock.close()
    wait_until(lambda: not publisher.held().get("r1"), "the queue to empty")
    # A later request still works once an instance is there.
    instance = cluster.instance("k1", "r1")
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": [instance]}, HOLD))
    with router.client() as client:
        assert client.get("/").status_code == 200


def test_capacity_limit_answers_429_and_counts_it(cluster: Cluster) -> None:
    instance = cluster.instance("k1", "r1")
    publisher = cluster.start_publisher()
    router = cluster.router()
    limited: ScaleSpec = {"limit": 2, "hold": WAIT, "queue": 10}
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": [instance]}, limited))
    release = cluster.marker("release")
    started = [cluster.marker(f"started{n}") for n in range(2)]

    def hold(marker: object) -> httpx.Response:
        with router.client() as client:
            return client.get("/hold", params={"started": str(marker), "release": str(release)})

    with ThreadPoolExecutor(2) as pool:
        busy = [pool.submit(hold, m) for m in started]
        wait_until(lambda: all(m.exists() for m in started), "two requests in flight")
        with router.client() as client:
            r = client.get("/")
            assert r.status_code == 429
            assert r.headers["retry-after"] == "1"
        wait_until(lambda: publisher.rejected().get("r1") == 1, "the rejection counted")
        release.write_text("go")
        assert [f.result(WAIT).status_code for f in busy] == [200, 200]
    with router.client() as client:
        assert client.get("/").status_code == 200


def test_held_request_follows_a_redeploy(cluster: Cluster) -> None:
    """The app was redeployed while a request waited: it goes to the new revision."""
    publisher = cluster.start_publisher()
    router = cluster.router()
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": []}, HOLD))

    def get() -> httpx.Response:
        with router.client() as client:
            return client.get("/")

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(get)
        wait_until(lambda: publisher.held().get("r1") == 1, "the held request")
        instance = cluster.instance("k2", "r2")
        cluster.publish(make_table({"a.localhost": "r2"}, {"r2": [instance]}, HOLD))
        r = waiting.result(WAIT)
        assert r.status_code == 200
        assert r.json()["revision"] == "r2"


def test_pipelined_requests_behind_a_held_one_keep_their_order(cluster: Cluster) -> None:
    cluster.start_publisher()
    router = cluster.router()
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": []}, HOLD))
    sock = router.connect()
    one = b"GET /sleep?ms=1 HTTP/1.1\r\nHost: a.localhost\r\n\r\n"
    sock.sendall(one * 3)
    time.sleep(0.3)  # let them reach the router while nothing is ready
    instance = cluster.instance("k1", "r1")
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": [instance]}, HOLD))
    sock.settimeout(WAIT)
    data = b""
    while data.count(b"HTTP/1.1 200") < 3:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_request_to_a_dead_instance_waits_for_its_replacement(cluster: Cluster) -> None:
    """The only instance crashed (its socket file left behind): the next request waits
    for a table with a live instance instead of getting a 502."""
    dead = cluster.instance("k1", "r1")
    publisher = cluster.start_publisher()
    router = cluster.router()
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": [dead]}, HOLD))
    dead.kill()

    def get() -> httpx.Response:
        with router.client() as client:
            return client.get("/")

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(get)
        wait_until(lambda: publisher.held().get("r1") == 1, "the held request")
        replacement = cluster.instance("k2", "r1")
        cluster.publish(make_table({"a.localhost": "r1"}, {"r1": [replacement]}, HOLD))
        r = waiting.result(WAIT)
        assert r.status_code == 200
        assert r.json()["instance"] == "k2"
