"""A router told to stop (SIGTERM) exits, whatever its feed is doing at that moment.

The case that once left a router idle in its event loop for good: its control plane died, so
the feed dropped, and the SIGTERM came in the same instant (PR_SET_PDEATHSIG). The feed client
was then waiting for its reporter task to end, under `suppress(CancelledError)`, and that
swallowed the router's cancellation of the feed client too: the client went on reconnecting
and the router waited for it forever.

The router is stopped (SIGSTOP) while the feed drops and the SIGTERM is sent, then continued
(SIGCONT): it sees the end of the feed and the signal in one turn of its event loop, which
is the moment that raced.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO, WAIT, Cluster, Router, make_table, wait_until

# A feed publisher in a process of its own, so that it can be SIGKILLed like a control plane:
# its socket file stays behind and the router's reconnects are refused.
PUBLISHER = """
import asyncio, sys
from cloudlet.router.feed import FeedPublisher, RouteTable

async def main():
    publisher = FeedPublisher(sys.argv[1])
    await publisher.start()
    publisher.publish(RouteTable())
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
def publisher_process(cluster: Cluster) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, cluster.feed], cwd=REPO, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(WAIT)


def state(router: Router) -> str:
    """The process state letter from /proc (R, S, T when stopped, Z ...)."""
    stat = Path(f"/proc/{router.proc.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def connected(router: Router) -> bool:
    return "applied table generation" in router.log.read_text()


def assert_exits(router: Router) -> None:
    try:
        code = router.proc.wait(WAIT)
    except subprocess.TimeoutExpired:
        router.proc.kill()
        router.proc.wait(WAIT)
        raise AssertionError(
            "the router did not exit after SIGTERM:\n" + router.log.read_text()[-3000:]
        ) from None
    assert code == 0, router.log.read_text()[-3000:]
    assert "router stopped" in router.log.read_text()


def test_sigterm_as_the_killed_control_plane_drops_the_feed(
    cluster: Cluster, publisher_process: subprocess.Popen[bytes]
) -> None:
    router = cluster.router()
    wait_until(lambda: connected(router), "the router to apply the feed's table")
    router.proc.send_signal(signal.SIGSTOP)
    wait_until(lambda: state(router) == "T", "the router to stop")
    publisher_process.kill()  # the feed socket closes as the process exits; its file stays
    publisher_process.wait(WAIT)
    router.proc.send_signal(signal.SIGTERM)
    router.proc.send_signal(signal.SIGCONT)
    assert_exits(router)


def test_sigterm_as_the_closing_control_plane_drops_the_feed(cluster: Cluster) -> None:
    publisher = cluster.start_publisher()
    router = cluster.router()
    cluster.publish(make_table({}, {}))
    router.proc.send_signal(signal.SIGSTOP)
    wait_until(lambda: state(router) == "T", "the router to stop")
    publisher.close()  # closes the router's connection and removes the socket file
    router.proc.send_signal(signal.SIGTERM)
    router.proc.send_signal(signal.SIGCONT)
    assert_exits(router)


def test_sigterm_while_the_feed_is_away(
    cluster: Cluster, publisher_process: subprocess.Popen[bytes]
) -> None:
    router = cluster.router()
    wait_until(lambda: connected(router), "the router to apply the feed's table")
    publisher_process.kill()
    publisher_process.wait(WAIT)
    # Reconnecting with back-off: the refusals are logged once.
    wait_until(lambda: "cannot reach" in router.log.read_text(), "the router to retry")
    router.proc.send_signal(signal.SIGTERM)
    assert_exits(router)
