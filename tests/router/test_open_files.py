"""At its open-files limit the router queues requests for an instance connection instead
of failing them: every client connection and every instance connection is a descriptor."""

from __future__ import annotations

import time

from .conftest import WAIT, Cluster, make_table


def test_requests_beyond_the_descriptor_budget_wait_for_a_connection(cluster: Cluster) -> None:
    instance = cluster.instance("k1", "r1")
    cluster.start_publisher()
    # 200 descriptors, 64 kept for the router itself: with 100 clients connected, 36 are
    # left for instance connections, fewer than the 100 requests in flight need.
    router = cluster.router(nofile=200)
    cluster.publish(make_table({"a.localhost": "r1"}, {"r1": [instance]}))
    clients = [router.connect() for _ in range(100)]
    time.sleep(0.5)  # all accepted before any request arrives, as under a real burst
    request = b"GET /sleep?ms=300 HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\n\r\n"
    for sock in clients:
        sock.sendall(request)
    statuses = []
    for sock in clients:
        sock.settimeout(WAIT)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        statuses.append(data[:12].decode())
    assert statuses == ["HTTP/1.1 200"] * 100
