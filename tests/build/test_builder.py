import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi_cloud_cli.commands.deploy.archive import archive as cli_archive
from uv import find_uv_bin

from cloudlet.build import BuildError, BuildResult, build_revision

pytestmark = pytest.mark.anyio

APP = "from fastapi import FastAPI\n\napp = FastAPI()\n"


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        assert "\n" not in line
        self.lines.append(line)

    def __contains__(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def upload(tmp_path: Path, files: dict[str, str]) -> Path:
    """Pack `files` exactly as `fastapi deploy` does."""
    project = tmp_path / "project"
    for name, content in files.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    archive = tmp_path / "archive.tar"
    cli_archive(project, archive)
    return archive


async def build(
    tmp_path: Path,
    files: dict[str, str],
    *,
    uv_cache: Path | None = None,
    app_directory: str | None = None,
    timeout_s: float = 900.0,
) -> tuple[BuildResult, Log]:
    log = Log()
    result = await build_revision(
        upload(tmp_path, files),
        tmp_path / "revision",
        app_directory=app_directory,
        uv_cache=uv_cache or tmp_path / "uv-cache",
        log=log,
        timeout_s=timeout_s,
    )
    return result, log


async def failed_build(tmp_path: Path, files: dict[str, str], **options: Any) -> BuildError:
    with pytest.raises(BuildError) as caught:
        await build(tmp_path, files, **options)
    return caught.value


def venv_python(result: BuildResult, code: str) -> str:
    return subprocess.run(
        [str(result.python), "-I", "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


async def test_bad_archive_fails_extraction_and_leaves_no_source(tmp_path: Path) -> None:
    archive = tmp_path / "archive.tar"
    archive.write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 10)
    with pytest.raises(BuildError) as caught:
        await build_revision(
            archive, tmp_path / "revision", app_directory=None, uv_cache=tmp_path / "c", log=Log()
        )
    assert caught.value.status == "extracting_failed"
    assert not (tmp_path / "revision" / "source").exists()


@pytest.mark.parametrize("directory", ["backend", "../project", "/etc"])
async def test_missing_app_directory(tmp_path: Path, directory: str) -> None:
    error = await failed_build(tmp_path, {"main.py": APP}, app_directory=directory)
    assert (error.status, error.error_code) == ("building_image_failed", "app_directory_not_found")
    assert "fastapi cloud apps update --directory" in error.hint
    assert not (tmp_path / "revision" / "venv").exists()


async def test_app_not_found_fails_before_installing(tmp_path: Path) -> None:
    error = await failed_build(tmp_path, {"script.py": "print('hi')\n"})
    assert (error.status, error.error_code) == ("building_image_failed", "app_not_found")
    assert not (tmp_path / "revision" / "venv").exists()


async def test_requires_python_that_no_interpreter_satisfies(tmp_path: Path) -> None:
    pyproject = '[project]\nname = "x"\nversion = "1"\nrequires-python = ">=3.99"\n'
    error = await failed_build(tmp_path, {"main.py": APP, "pyproject.toml": pyproject})
    assert (error.status, error.error_code) == ("building_image_failed", "python_not_available")
    assert ">=3.99" in error.message
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in error.message
    assert "requires-python" in error.hint


async def test_failed_install_reports_uv_errors_and_the_exclude_newer_way_out(
    tmp_path: Path,
) -> None:
    # Offline with an empty cache: uv cannot find the package, deterministically.
    env = {**os.environ, "UV_OFFLINE": "1"}
    files = {"main.py": APP, "requirements.txt": "cloudlet-no-such-package==1.0\n"}
    log = Log()
    with pytest.raises(BuildError) as caught:
        await build_revision(
            upload(tmp_path, files),
            tmp_path / "revision",
            app_directory=None,
            uv_cache=tmp_path / "uv-cache",
            log=log,
            env=env,
        )
    error = caught.value
    assert (error.status, error.error_code) == (
        "building_image_failed",
        "dependency_install_failed",
    )
    assert "cloudlet-no-such-package" in error.message
    assert "exclude-newer" in error.hint
    assert "Installing dependencies from requirements.txt with uv…" in log
    assert "cloudlet-no-such-package" in log  # uv's own output was streamed


SLOW_BACKEND = """
import os, time

def _hang(*args, **kwargs):
    with open({pid_file!r}, "w") as file:
        file.write(str(os.getpid()))
    time.sleep(3600)

get_requires_for_build_wheel = prepare_metadata_for_build_wheel = build_wheel = _hang
get_requires_for_build_editable = prepare_metadata_for_build_editable = build_editable = _hang
get_requires_for_build_sdist = build_sdist = _hang
"""
SLOW_PYPROJECT = """
[build-system]
requires = []
build-backend = "slow_backend"
backend-path = ["."]

[project]
name = "slowpkg"
version = "0"
"""


def build_processes(marker: str) -> list[int]:
    """Live processes whose command line or working directory mentions `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X") and (marker in cmdline or marker in cwd):
            found.append(int(entry.name))
    return found


async def test_timeout_stops_the_build_and_kills_its_processes(tmp_path: Path) -> None:
    pid_file = tmp_path / "backend.pid"
    files = {
        "main.py": APP,
        "requirements.txt": "./slowpkg\n",
        "slowpkg/pyproject.toml": SLOW_PYPROJECT,
        "slowpkg/slow_backend.py": SLOW_BACKEND.format(pid_file=str(pid_file)),
    }
    error = await failed_build(tmp_path, files, timeout_s=5)
    assert (error.status, error.error_code) == ("building_image_failed_timeout", "build_timeout")
    revision = str(tmp_path / "revision")
    for _ in range(600):  # SIGKILL is asynchronous; wait for the kernel, not a timing assertion
        if not build_processes(revision):
            break
        await anyio.sleep(0.05)
    assert build_processes(revision) == []
    print("backend reached:", pid_file.exists())
    if pid_file.exists():  # the build backend was running when the timeout hit
        assert int(pid_file.read_text()) not in build_processes("")


# Real builds with uv against PyPI.


@pytest.fixture(scope="module")
def shared_uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


RUNTIME_IMPORTS = "import fastapi, uvicorn, uvloop, httptools; print('ok')"


@pytest.mark.slow
async def test_real_build_with_requirements_txt(tmp_path: Path, shared_uv_cache: Path) -> None:
    result, log = await build(
        tmp_path, {"main.py": APP, "requirements.txt": "fastapi\n"}, uv_cache=shared_uv_cache
    )
    revision = tmp_path / "revision"
    assert result.venv == revision / "venv"
    assert result.python == revision / "venv" / "bin" / "python"
    assert result.project_dir == result.import_root == revision / "source"
    assert result.entrypoint == "main:app"
    assert venv_python(result, RUNTIME_IMPORTS) == "ok"
    assert (result.project_dir / ".env").read_text() == ""
    assert log.lines[0] == "Extracting upload…"
    assert "Installing dependencies from requirements.txt with uv…" in log
    assert "Found app: main:app" in log
    assert any(line.startswith("Installed ") for line in log.lines)  # uv's own lines
    assert log.lines[-1].startswith("Build finished in ")


@pytest.mark.slow
async def test_real_build_with_uv_lock(tmp_path: Path, shared_uv_cache: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "shop"\nversion = "1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["fastapi", "idna==3.6"]\n'
        '[dependency-groups]\ndev = ["pytest"]\n'
    )
    env = {**os.environ, "UV_CACHE_DIR": str(shared_uv_cache)}
    await anyio.run_process([find_uv_bin(), "lock"], cwd=project, env=env, check=True)
    result, log = await build(tmp_path, {"main.py": APP}, uv_cache=shared_uv_cache)
    assert "Installing dependencies from uv.lock with uv…" in log
    assert venv_python(result, "import idna; print(idna.__version__)") == "3.6"
    assert venv_python(result, RUNTIME_IMPORTS) == "ok"
    with pytest.raises(subprocess.CalledProcessError):  # --no-dev
        venv_python(result, "import pytest")


@pytest.mark.slow
async def test_real_build_of_a_poetry_project(tmp_path: Path, shared_uv_cache: Path) -> None:
    pyproject = (
        '[tool.poetry]\nname = "shop"\nversion = "1"\n'
        '[tool.poetry.dependencies]\npython = "^3.11"\nfastapi = "*"\nidna = "~3.6"\n'
    )
    result, log = await build(
        tmp_path, {"main.py": APP, "pyproject.toml": pyproject}, uv_cache=shared_uv_cache
    )
    assert "[tool.poetry.dependencies], translated to PEP 440" in " ".join(log.lines)
    assert venv_python(result, "import idna; print(idna.__version__)").startswith("3.6")
    assert venv_python(result, RUNTIME_IMPORTS) == "ok"


@pytest.mark.slow
async def test_real_build_default_dependencies_in_an_app_directory(
    tmp_path: Path, shared_uv_cache: Path
) -> None:
    files = {
        "README.md": "monorepo",
        "backend/src/shop/__init__.py": "",
        "backend/src/shop/server.py": "from fastapi import FastAPI\napplication = FastAPI()\n",
        "backend/.env.example": "X=1",
    }
    result, log = await build(tmp_path, files, uv_cache=shared_uv_cache, app_directory="backend")
    source = tmp_path / "revision" / "source"
    assert result.project_dir == source / "backend"
    assert result.import_root == source / "backend" / "src"
    assert result.entrypoint == "shop.server:application"
    assert "no dependency file, so the default fastapi[standard]" in " ".join(log.lines)
    assert (
        venv_python(result, "import fastapi_cli, uvicorn, uvloop, httptools; print('ok')") == "ok"
    )
    assert (source / "backend" / ".env").exists()


@pytest.mark.slow
async def test_real_build_honours_exclude_newer(tmp_path: Path, shared_uv_cache: Path) -> None:
    # A pyproject.toml with no [project] table, only tool config, next to requirements.txt.
    files = {
        "main.py": APP,
        "requirements.txt": "fastapi\nidna\n",
        "pyproject.toml": '[tool.cloudlet]\nexclude-newer = "2024-01-01"\n',
    }
    result, log = await build(tmp_path, files, uv_cache=shared_uv_cache)
    assert "Ignoring packages released after 2024-01-01" in " ".join(log.lines)
    assert venv_python(result, "import idna; print(idna.__version__)") == "3.6"
    assert venv_python(result, RUNTIME_IMPORTS) == "ok"
