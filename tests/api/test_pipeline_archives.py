"""A hostile upload goes through the real pipeline and fails extraction, writing nothing outside."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from fastapi.testclient import TestClient

from cloudlet.api.app import create_app
from cloudlet.control.platform import Platform

from ..conftest import ADMIN_TOKEN, test_settings
from .conftest import Api
from .test_deployments import upload


def archive(members: list[tarfile.TarInfo], payload: bytes = b"x") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info in members:
            if info.isreg():
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                tar.addfile(info)
    return zstandard.ZstdCompressor().compress(raw.getvalue())


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.fixture
def building_api(short_tmp: Path, database_url: str) -> Iterator[Api]:
    settings = test_settings(short_tmp / "data", database_url, build_workers=1)
    with TestClient(create_app(Platform(settings)), base_url="http://127.0.0.1:8000") as client:
        yield Api(client, ADMIN_TOKEN)


@pytest.mark.parametrize(
    "members",
    [
        [member("../escaped.py")],
        [member("/tmp/absolute.py")],
        [member("link", tarfile.SYMTYPE, "/etc/passwd")],
        [member("hard", tarfile.LNKTYPE, "main.py")],
        [member("dev", tarfile.CHRTYPE)],
    ],
    ids=["traversal", "absolute", "symlink", "hardlink", "device"],
)
def test_bad_archive_fails_extraction(
    building_api: Api, short_tmp: Path, members: list[tarfile.TarInfo]
) -> None:
    api = building_api
    app = api.create_app()
    payload = archive([member("main.py"), *members])
    deployment = api.post(
        f"/apps/{app['id']}/deployments/", json={"archive_size_bytes": len(payload)}
    ).json()
    assert upload(api, deployment["id"], payload)[0] == 204
    api.post(f"/deployments/{deployment['id']}/upload-complete")
    deadline = time.monotonic() + 60
    while (status := api.get(f"/deployments/{deployment['id']}").json()["status"]) not in (
        "extracting_failed",
        "extracting_failed_archive_too_large",
        "building_image_failed",
        "success",
    ):
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    body = api.get(f"/deployments/{deployment['id']}").json()
    assert body["status"] == "extracting_failed", body
    assert body["failure"]["error_message"] and body["failure"]["error_code"]
    # Nothing escaped the build folder.
    assert not (short_tmp / "escaped.py").exists()
    assert not Path("/tmp/absolute.py").exists()
    assert sorted(p.name for p in short_tmp.iterdir()) == ["data"]
