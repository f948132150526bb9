"""A sample of real apps, each deployed with the real `fastapi deploy` and served under load.

The sample apps of the core issue (examples/hello and tests/apps: async_uvlock,
src_requirements, bare) and one real public FastAPI project, httpbinx (an httpbin clone), whose
sdist is fetched from the package index at test time and deployed as it is published. Each app
then takes a few seconds of load through the router (keep-alive clients and a new connection per
request, on several real endpoints): no request may fail, and every probe must get the status it
expects.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import APPS, Cloudlet
from .load import Check, Probe, load

pytestmark = [pytest.mark.slow, pytest.mark.store_independent]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# A real public FastAPI project with real endpoints and nothing external to talk to
# (https://github.com/imleowoo/httpbinx): seven direct dependencies, a src layout, pdm-backend.
HTTPBINX = "httpbinx==1.13.1"
LOAD_SECONDS = 3.0  # of load per app: long enough for a few hundred requests, nothing measured


def json_is(expected: object) -> Check:
    def check(r: httpx.Response) -> str | None:
        return None if r.json() == expected else f"body {r.text[:300]!r}"

    return check


def json_has(**expected: object) -> Check:
    def check(r: httpx.Response) -> str | None:
        body = r.json()
        wrong = {k: body.get(k) for k, v in expected.items() if body.get(k) != v}
        return f"wrong {wrong} in {r.text[:300]!r}" if wrong else None

    return check


def text_has(*needles: str) -> Check:
    def check(r: httpx.Response) -> str | None:
        missing = [n for n in needles if n not in r.text]
        return f"{missing} not in {r.text[:300]!r}" if missing else None

    return check


def openapi_titled(title: str) -> Check:
    def check(r: httpx.Response) -> str | None:
        found = r.json()["info"]["title"]
        return None if found == title else f"title {found!r}"

    return check


def echoed_header(name: str, value: str) -> Check:
    """httpbinx's /headers and /anything echo the request's headers."""

    def check(r: httpx.Response) -> str | None:
        headers = {k.lower(): v for k, v in r.json()["headers"].items()}
        return None if headers.get(name.lower()) == value else f"headers {headers}"

    return check


def body_size(size: int) -> Check:
    def check(r: httpx.Response) -> str | None:
        return None if len(r.content) == size else f"{len(r.content)} bytes, not {size}"

    return check


def starts_with(prefix: bytes) -> Check:
    def check(r: httpx.Response) -> str | None:
        return None if r.content.startswith(prefix) else f"starts {r.content[:16]!r}"

    return check


def empty(r: httpx.Response) -> str | None:
    return None if r.content == b"" else f"body {r.content[:100]!r}"


def echoed_json(method: str, expected: object) -> Check:
    """httpbinx echoes the method and the JSON body (serialized again, as a string)."""

    def check(r: httpx.Response) -> str | None:
        body = r.json()
        if body["method"] != method:
            return f"method {body['method']!r}"
        return None if json.loads(body["json"]) == expected else f"json {body['json'][:300]!r}"

    return check


def redirects_to(location: str) -> Check:
    def check(r: httpx.Response) -> str | None:
        found = r.headers.get("location")
        return None if found == location else f"location {found!r}"

    return check


def gunzipped(r: httpx.Response) -> str | None:
    """httpx has decoded the gzip body: it must be httpbinx's JSON saying it was gzipped."""
    if r.headers.get("content-encoding") != "gzip":
        return f"content-encoding {r.headers.get('content-encoding')!r}"
    return None if r.json()["extras"].get("gzipped") is True else f"body {r.text[:300]!r}"


PAYLOAD = {"order": 17, "items": ["a", "b"], "note": "ünïcode"}
BIG_PAYLOAD = {"blob": "0123456789abcdef" * 1024, "n": list(range(500))}  # ~20 KB
JSON_HEADERS = (("Content-Type", "application/json"),)
DOCS = text_has("swagger-ui")

PROBES: dict[str, list[Probe]] = {
    "hello": [
        Probe("/", check=json_has(message="Hello from Cloudlet!")),
        Probe("/items/42?q=load", check=json_is({"item_id": 42, "q": "load"})),
        Probe("/items/7", check=json_is({"item_id": 7, "q": None})),
        Probe("/items/forty-two", status=422),
        Probe("/docs", check=DOCS),
        Probe("/openapi.json", check=openapi_titled("Hello from Cloudlet")),
        Probe("/nowhere", status=404),
    ],
    "async_uvlock": [
        Probe("/", check=json_has(app="async_uvlock")),
        Probe("/slow?seconds=0.01", check=json_is({"slept": 0.01})),
        Probe("/slow?seconds=soon", status=422),
        Probe("/", method="POST", status=405),
        Probe("/openapi.json", check=openapi_titled("FastAPI")),
    ],
    "src_requirements": [
        Probe("/", check=json_has(app="src_requirements")),
        Probe("/openapi.json", check=openapi_titled("shop")),
        Probe("/docs", check=DOCS),
        Probe("/nowhere", status=404),
    ],
    "bare": [
        Probe("/", check=json_is({"app": "bare"})),
        Probe("/docs", check=DOCS),
        Probe("/nowhere", status=404),
    ],
    "httpbinx": [
        Probe("/", check=DOCS),  # httpbinx serves its Swagger UI at /
        Probe("/get?probe=load&n=3", check=json_has(args={"probe": "load", "n": "3"})),
        Probe(
            "/post",
            method="POST",
            content=json.dumps(PAYLOAD).encode(),
            headers=JSON_HEADERS,
            check=echoed_json("POST", PAYLOAD),
        ),
        Probe(
            "/anything?big=1",
            method="PUT",
            content=json.dumps(BIG_PAYLOAD).encode(),
            headers=JSON_HEADERS,
            check=echoed_json("PUT", BIG_PAYLOAD),
        ),
        Probe(
            "/headers",
            headers=(("X-Probe", "headers"),),
            check=echoed_header("X-Probe", "headers"),
        ),
        Probe("/status/418", status=418),
        Probe("/status/204", status=204, check=empty),
        Probe("/status/503", status=503),
        Probe("/redirect-to?url=/get", status=302, check=redirects_to("/get")),
        Probe("/uuid", check=lambda r: None if len(r.json()["uuid"]) == 36 else r.text),
        Probe("/json", check=json_has(title="Sample Slide Show")),
        Probe("/html", check=text_has("Moby-Dick")),
        Probe("/gzip", check=gunzipped),
        Probe("/bytes/4096?seed=1", check=body_size(4096)),
        Probe("/stream-bytes/16384?seed=2&chunk_size=1000", check=body_size(16384)),
        Probe(
            f"/base64/{base64.urlsafe_b64encode(b'served by cloudlet').decode()}",
            check=text_has("served by cloudlet"),
        ),
        Probe("/image/png", check=starts_with(b"\x89PNG")),
        Probe("/static/favicon.png", check=starts_with(b"\x89PNG")),
        Probe("/delay/0"),
        Probe("/get", method="POST", status=405),
    ],
}


@dataclass
class Deployed:
    slug: str
    ok: bool
    output: str


def fetch_sdist(requirement: str, dest: Path) -> Path:
    """Download `requirement`'s sdist with pip and unpack it; skip when the index is away."""
    downloads = dest / "downloads"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"),
            *("--disable-pip-version-check", "--dest", str(downloads), requirement),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.skip(
            f"cannot fetch the sdist of {requirement} (is the package index reachable? "
            f"builds need it too): {result.stderr[-800:]}"
        )
    (archive,) = downloads.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    (project,) = (p for p in dest.iterdir() if p.is_dir() and p.name != "downloads")
    return project


def deploy(cloudlet: Cloudlet, name: str, path: Path) -> Deployed:
    app, token = cloudlet.new_app(name)
    result = cloudlet.fastapi(
        "deploy", "--app-id", app["id"], cwd=path, CI="true", FASTAPI_CLOUD_TOKEN=token
    )
    return Deployed(app["slug"], result.returncode == 0, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Each app's folder, copied so the CLI's link files land outside the repository; for an
    app that cannot be had, the reason to skip it."""
    root = tmp_path_factory.mktemp("real-apps")
    found: dict[str, Path | str] = {}
    found["hello"] = shutil.copytree(EXAMPLES / "hello", root / "hello")
    for name in ("async_uvlock", "src_requirements", "bare"):
        found[name] = shutil.copytree(APPS / name, root / name)
    try:
        found["httpbinx"] = fetch_sdist(HTTPBINX, root / "httpbinx")
    except pytest.skip.Exception as exc:
        found["httpbinx"] = str(exc)
    return found


@pytest.fixture(scope="module")
def deployed(cloudlet: Cloudlet, sources: dict[str, Path | str]) -> dict[str, Deployed]:
    """Every app deployed at once (the platform queues the builds); each test then judges its
    own app's deploy."""
    paths = {name: path for name, path in sources.items() if isinstance(path, Path)}
    with ThreadPoolExecutor(len(paths)) as pool:
        futures = {
            name: pool.submit(deploy, cloudlet, f"real-{name.replace('_', '-')}", path)
            for name, path in paths.items()
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", list(PROBES))
def test_app_serves_under_load_with_zero_failures(
    cloudlet: Cloudlet,
    sources: dict[str, Path | str],
    deployed: dict[str, Deployed],
    name: str,
) -> None:
    source = sources[name]
    if isinstance(source, str):
        pytest.skip(source)
    app = deployed[name]
    assert app.ok, app.output + cloudlet.output()
    probes = PROBES[name]
    host = f"{app.slug}.localhost"
    with load(cloudlet.router_port, host, probes) as traffic:
        time.sleep(LOAD_SECONDS)
    print(f"{name}: {traffic.summary()}")
    assert traffic.failures == [], f"{len(traffic.failures)} failures:\n" + "\n".join(
        traffic.failures[:20]
    )
    # Every probe was answered, and only ever with the status it expects.
    assert set(traffic.statuses) == {f"{p.name} -> {p.status}" for p in probes}, traffic.summary()
