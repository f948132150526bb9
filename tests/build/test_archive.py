import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from fastapi_cloud_cli.commands.deploy.archive import archive as cli_archive

from cloudlet.build import ArchiveLimits, BuildError, extract_archive

Member = tuple[tarfile.TarInfo, bytes | None]


def regular(name: str, data: bytes = b"print('hi')\n", mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


def write_archive(path: Path, members: list[Member], format: int = tarfile.GNU_FORMAT) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(zstandard.ZstdCompressor().compress(buffer.getvalue()))
    return path


def snapshot(root: Path) -> set[str]:
    """Every path under root, links included, so anything written anywhere there shows up."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    revision = tmp_path / "build" / "rev"
    revision.mkdir(parents=True)
    return revision / "source"


def assert_refused(
    tmp_path: Path,
    dest: Path,
    upload: Path,
    status: str,
    error_code: str,
    limits: ArchiveLimits = ArchiveLimits(),
) -> BuildError:
    before = snapshot(tmp_path)
    with pytest.raises(BuildError) as caught:
        extract_archive(upload, dest, limits)
    assert (caught.value.status, caught.value.error_code) == (status, error_code)
    assert caught.value.message and caught.value.hint
    # Nothing written anywhere: no dest, no staging folder left, nothing outside.
    assert snapshot(tmp_path) == before
    return caught.value


def test_extracts_an_archive_made_by_the_cli(tmp_path: Path, dest: Path) -> None:
    project = tmp_path / "project"
    (project / "pkg" / "sub").mkdir(parents=True)
    (project / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "sub" / "data.json").write_bytes(b'{"a": 1}')
    script = project / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o4755)  # setuid must not survive
    (project / ".env").write_text("SECRET=1")  # the CLI never uploads this
    upload = tmp_path / "archive.tar"
    sent = cli_archive(project, upload)
    assert upload.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"

    assert extract_archive(upload, dest) == sent == 4
    assert (dest / "main.py").read_text() == (project / "main.py").read_text()
    assert (dest / "pkg" / "sub" / "data.json").read_bytes() == b'{"a": 1}'
    assert not (dest / ".env").exists()
    assert stat.S_IMODE((dest / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "main.py").stat().st_mode) == 0o644
    assert (dest / "main.py").stat().st_mtime == int((project / "main.py").stat().st_mtime)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["source"]  # no staging left


def test_directory_entries_and_modes_are_sanitised(tmp_path: Path, dest: Path) -> None:
    members = [
        special("./", tarfile.DIRTYPE),
        special("pkg/", tarfile.DIRTYPE),
        regular("pkg/a.py", mode=0o6777),
        regular("./pkg/b.py", mode=0o400),
        regular("deep/er/c.py", mode=0),
        special("empty/dir", tarfile.DIRTYPE),
    ]
    members[1][0].mode = 0o7777
    upload = write_archive(tmp_path / "upload.tar.zst", members)

    assert extract_archive(upload, dest) == 3
    assert stat.S_IMODE((dest / "pkg").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "pkg" / "a.py").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "pkg" / "b.py").stat().st_mode) == 0o600
    assert stat.S_IMODE((dest / "deep" / "er" / "c.py").stat().st_mode) == 0o600
    assert (dest / "empty" / "dir").is_dir()


def test_a_long_gnu_name_is_fine(tmp_path: Path, dest: Path) -> None:
    name = "/".join(["d" * 200] * 3) + "/module.py"
    upload = write_archive(tmp_path / "upload.tar.zst", [regular(name)])
    assert extract_archive(upload, dest) == 1
    assert (dest / name).is_file()


UNSAFE: dict[str, list[Member]] = {
    "parent traversal": [regular("../../evil.py")],
    "nested traversal": [regular("pkg/../../../evil.py")],
    "traversal after a good file": [regular("ok.py"), regular("../../evil.py")],
}


@pytest.mark.parametrize("members", UNSAFE.values(), ids=UNSAFE.keys())
def test_path_traversal_is_refused(tmp_path: Path, dest: Path, members: list[Member]) -> None:
    upload = write_archive(tmp_path / "upload.tar.zst", members)
    error = assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_unsafe_path")
    assert "evil.py" in error.message


def test_absolute_path_is_refused(tmp_path: Path, dest: Path) -> None:
    target = tmp_path / "absolute-evil.py"
    upload = write_archive(tmp_path / "upload.tar.zst", [regular(str(target))])
    assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_unsafe_path")
    assert not target.exists()


LINKS_AND_SPECIALS: dict[str, tuple[list[Member], str]] = {
    "symlink": ([special("link.py", tarfile.SYMTYPE, "/etc/passwd")], "archive_link"),
    "symlink then write through it": (
        [special("out", tarfile.SYMTYPE, ".."), regular("out/evil.py")],
        "archive_link",
    ),
    "hard link": (
        [regular("a.py"), special("b.py", tarfile.LNKTYPE, "a.py")],
        "archive_link",
    ),
    "hard link outside": ([special("passwd", tarfile.LNKTYPE, "/etc/passwd")], "archive_link"),
    "character device": ([special("null", tarfile.CHRTYPE)], "archive_special_file"),
    "block device": ([special("sda", tarfile.BLKTYPE)], "archive_special_file"),
    "fifo": ([special("pipe", tarfile.FIFOTYPE)], "archive_special_file"),
    "contiguous file": ([special("c", tarfile.CONTTYPE)], "archive_special_file"),
}


@pytest.mark.parametrize(
    "members, code", LINKS_AND_SPECIALS.values(), ids=LINKS_AND_SPECIALS.keys()
)
def test_links_and_special_files_are_refused(
    tmp_path: Path, dest: Path, members: list[Member], code: str
) -> None:
    upload = write_archive(tmp_path / "upload.tar.zst", members)
    assert_refused(tmp_path, dest, upload, "extracting_failed", code)


BAD_NAMES = {
    "newline": "bad\nname.py",
    "escape": "bad\x1bname.py",
    "delete": "bad\x7fname.py",
    "backslash": "dir\\evil.py",
    "not utf-8": "caf\udce9.py",
    "too long part": "x" * 256 + ".py",
    "too long path": "/".join(["d" * 200] * 6) + "/m.py",
    "only dots": "./",
}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_odd_names_are_refused(tmp_path: Path, dest: Path, name: str) -> None:
    upload = write_archive(tmp_path / "upload.tar.zst", [regular("ok.py"), regular(name)])
    assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_bad_name")


def test_nul_in_a_pax_name_is_refused(tmp_path: Path, dest: Path) -> None:
    info, data = regular("placeholder.py")
    info.pax_headers = {"path": "evil\x00.py"}
    upload = write_archive(tmp_path / "upload.tar.zst", [(info, data)], format=tarfile.PAX_FORMAT)
    assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_bad_name")


CONFLICTS: dict[str, list[Member]] = {
    "duplicate file": [regular("a.py"), regular("a.py")],
    "file then folder": [regular("a"), regular("a/b.py")],
    "folder then file": [regular("a/b.py"), regular("a")],
}


@pytest.mark.parametrize("members", CONFLICTS.values(), ids=CONFLICTS.keys())
def test_conflicting_entries_are_refused(tmp_path: Path, dest: Path, members: list[Member]) -> None:
    upload = write_archive(tmp_path / "upload.tar.zst", members)
    assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_conflict")


def test_too_many_files(tmp_path: Path, dest: Path) -> None:
    upload = write_archive(tmp_path / "upload.tar.zst", [regular(f"f{i}.py") for i in range(4)])
    error = assert_refused(
        tmp_path,
        dest,
        upload,
        "extracting_failed",
        "archive_too_many_files",
        ArchiveLimits(max_files=3),
    )
    assert ".fastapicloudignore" in error.hint
    assert extract_archive(upload, dest, ArchiveLimits(max_files=4)) == 4


def test_too_many_unpacked_bytes_over_several_files(tmp_path: Path, dest: Path) -> None:
    members = [regular(f"f{i}.bin", b"x" * 400) for i in range(3)]
    upload = write_archive(tmp_path / "upload.tar.zst", members)
    error = assert_refused(
        tmp_path,
        dest,
        upload,
        "extracting_failed_archive_too_large",
        "archive_too_large",
        ArchiveLimits(max_unpacked_bytes=1000),
    )
    assert ".fastapicloudignore" in error.hint
    assert extract_archive(upload, dest, ArchiveLimits(max_unpacked_bytes=1200)) == 3


def test_compressed_upload_too_large(tmp_path: Path, dest: Path) -> None:
    upload = write_archive(tmp_path / "upload.tar.zst", [regular("a.py", os.urandom(4096))])
    limits = ArchiveLimits(max_compressed_bytes=upload.stat().st_size - 1)
    error = assert_refused(
        tmp_path, dest, upload, "extracting_failed_archive_too_large", "archive_too_large", limits
    )
    assert ".fastapicloudignore" in error.hint


RealDecompressor = zstandard.ZstdDecompressor


class CountingDecompressor:
    """Counts the decompressed bytes the extractor actually pulled out of zstd."""

    delivered = 0

    def __init__(self, **options: Any) -> None:
        self._inner = RealDecompressor(**options)

    def stream_reader(self, source: Any, **options: Any) -> Any:
        reader: Any = self._inner.stream_reader(source, **options)

        class Reader:
            def read(self, size: int = -1) -> bytes:
                data: bytes = reader.read(size)
                CountingDecompressor.delivered += len(data)
                return data

            def close(self) -> None:
                reader.close()

            def __enter__(self) -> "Reader":
                return self

            def __exit__(self, *exc_info: object) -> None:
                reader.close()

        return Reader()


@pytest.fixture
def counting_decompressor(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[CountingDecompressor]]:
    CountingDecompressor.delivered = 0
    monkeypatch.setattr(zstandard, "ZstdDecompressor", CountingDecompressor)
    yield CountingDecompressor


def test_decompression_bomb_stops_early(
    tmp_path: Path, dest: Path, counting_decompressor: type[CountingDecompressor]
) -> None:
    # 256 MiB of zeros in one file compresses to a few KiB.
    bomb_size = 256 * 1024 * 1024
    info = tarfile.TarInfo("bomb.bin")
    info.size = bomb_size
    upload = tmp_path / "upload.tar.zst"
    with (
        upload.open("wb") as out,
        zstandard.ZstdCompressor().stream_writer(out) as compressed,
        tarfile.open(fileobj=compressed, mode="w|", format=tarfile.GNU_FORMAT) as tar,
    ):
        tar.addfile(info, io.BytesIO(bytes(bomb_size)))
    assert upload.stat().st_size < 64 * 1024

    limit = 1024 * 1024
    assert_refused(
        tmp_path,
        dest,
        upload,
        "extracting_failed_archive_too_large",
        "archive_too_large",
        ArchiveLimits(max_unpacked_bytes=limit),
    )
    assert 0 < counting_decompressor.delivered <= limit


def test_header_overhead_is_bounded_too(
    tmp_path: Path, dest: Path, counting_decompressor: type[CountingDecompressor]
) -> None:
    # Tiny files with big PAX records: little content, lots of decompressed tar.
    members = [regular(f"f{i}.py", b"x") for i in range(10)]
    for info, _ in members:
        info.pax_headers = {"comment": "c" * 30_000}
    upload = write_archive(tmp_path / "upload.tar.zst", members, format=tarfile.PAX_FORMAT)
    limits = ArchiveLimits(max_files=10, max_unpacked_bytes=1000)
    assert_refused(
        tmp_path, dest, upload, "extracting_failed_archive_too_large", "archive_too_large", limits
    )
    tar_bytes = len(RealDecompressor().decompress(upload.read_bytes()))
    assert counting_decompressor.delivered < tar_bytes


def test_huge_metadata_record_is_refused(tmp_path: Path, dest: Path) -> None:
    info, data = regular("a.py")
    info.pax_headers = {"comment": "x" * (1024 * 1024)}
    upload = write_archive(tmp_path / "upload.tar.zst", [(info, data)], format=tarfile.PAX_FORMAT)
    assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_corrupt")


def test_not_zstd_is_refused(tmp_path: Path, dest: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info, _ = regular("a.py")
        tar.addfile(info, io.BytesIO(b"print('hi')\n"))
    upload = tmp_path / "upload.tar.gz"
    upload.write_bytes(buffer.getvalue())
    assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_corrupt")


def test_damaged_zstd_is_refused(tmp_path: Path, dest: Path) -> None:
    content = b"".join(b"line %d of a python module\n" % i for i in range(20_000))
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info, _ = regular("a.py", content)
        archive.addfile(info, io.BytesIO(content))
    data = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(tar.getvalue()))
    data[len(data) // 2 : len(data) // 2 + 16] = bytes(16)
    upload = tmp_path / "upload.tar.zst"
    upload.write_bytes(bytes(data))
    assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_corrupt")


def test_truncated_upload_is_refused(tmp_path: Path, dest: Path) -> None:
    upload = write_archive(tmp_path / "upload.tar.zst", [regular("a.py", os.urandom(100_000))])
    upload.write_bytes(upload.read_bytes()[: upload.stat().st_size // 2])
    assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_corrupt")


def test_zstd_of_something_that_is_not_tar(tmp_path: Path, dest: Path) -> None:
    upload = tmp_path / "upload.tar.zst"
    upload.write_bytes(zstandard.ZstdCompressor().compress(b"definitely not a tar archive" * 40))
    assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_corrupt")


def test_empty_archive_is_refused(tmp_path: Path, dest: Path) -> None:
    upload = write_archive(tmp_path / "upload.tar.zst", [special("only-a-dir", tarfile.DIRTYPE)])
    assert_refused(tmp_path, dest, upload, "extracting_failed", "archive_empty")


def test_existing_destination_is_never_overwritten(tmp_path: Path, dest: Path) -> None:
    dest.mkdir()
    (dest / "keep.py").write_text("keep")
    upload = write_archive(tmp_path / "upload.tar.zst", [regular("keep.py", b"replaced")])
    with pytest.raises(FileExistsError):
        extract_archive(upload, dest)
    assert (dest / "keep.py").read_text() == "keep"
