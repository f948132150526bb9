from pathlib import Path

import pytest

from cloudlet.build import BuildError
from cloudlet.build.dependencies import DEFAULT_REQUIREMENTS, plan_dependencies
from cloudlet.build.install import _install_command, uv_environment

PROJECT = """
[project]
name = "shop"
version = "1.0"
requires-python = ">=3.11"
dependencies = ["fastapi>=0.110", "httpx"]
"""
BUILD_SYSTEM = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""
POETRY = """
[tool.poetry]
name = "shop"
version = "1.0"

[tool.poetry.dependencies]
python = "^3.11"
fastapi = "^0.110"
"""
TOOLS_ONLY = """
[tool.ruff]
line-length = 100
"""


def write(project: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (project / name).write_text(content)
    return project


def test_uv_lock_comes_first(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": PROJECT, "uv.lock": "", "requirements.txt": "flask"})
    plan = plan_dependencies(tmp_path)
    assert plan.source == "uv.lock"
    assert plan.requires_python == ">=3.11"


def test_uv_lock_without_a_project_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, {"uv.lock": "", "requirements.txt": "flask"})
    assert plan_dependencies(tmp_path).source == "requirements.txt"
    write(tmp_path, {"pyproject.toml": TOOLS_ONLY})
    assert plan_dependencies(tmp_path).source == "requirements.txt"


def test_project_dependencies_come_before_requirements_txt(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": PROJECT, "requirements.txt": "flask"})
    plan = plan_dependencies(tmp_path)
    assert plan.source == "pyproject.toml"
    assert plan.requirements == ("fastapi>=0.110", "httpx")
    assert not plan.install_project


def test_project_with_a_build_system_is_installed_itself(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": PROJECT + BUILD_SYSTEM})
    plan = plan_dependencies(tmp_path)
    assert (plan.source, plan.install_project) == ("pyproject.toml", True)


def test_project_without_dependencies_falls_through(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project]\nname = "x"\nrequires-python = ">=3.12"\n'})
    write(tmp_path, {"requirements.txt": "flask"})
    plan = plan_dependencies(tmp_path)
    assert (plan.source, plan.requires_python) == ("requirements.txt", ">=3.12")


def test_pyproject_without_project_table_does_not_crash(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": TOOLS_ONLY})
    plan = plan_dependencies(tmp_path)
    assert (plan.source, plan.requirements) == ("default", DEFAULT_REQUIREMENTS)
    write(tmp_path, {"requirements.txt": "flask"})
    assert plan_dependencies(tmp_path).source == "requirements.txt"


def test_pylock_comes_before_requirements_txt(tmp_path: Path) -> None:
    write(tmp_path, {"pylock.toml": "", "requirements.txt": "flask"})
    assert plan_dependencies(tmp_path).source == "pylock.toml"


def test_requirements_txt_comes_before_poetry(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": POETRY, "requirements.txt": "flask"})
    assert plan_dependencies(tmp_path).source == "requirements.txt"


def test_poetry_only_project(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": POETRY})
    plan = plan_dependencies(tmp_path)
    assert plan.source == "poetry"
    assert plan.requirements == ("fastapi>=0.110,<0.111",)
    assert plan.requires_python == ">=3.11,<4.0"
    assert "poetry" in plan.requires_python_origin


def test_nothing_means_fastapi_standard(tmp_path: Path) -> None:
    plan = plan_dependencies(tmp_path)
    assert (plan.source, plan.requirements) == ("default", ("fastapi[standard]",))


@pytest.mark.parametrize(
    "setting, expected",
    [
        ('"2024-06-01"', "2024-06-01"),
        ("2024-06-01", "2024-06-01"),  # a bare TOML date
        ('"2024-06-01T12:00:00Z"', "2024-06-01T12:00:00Z"),
    ],
)
def test_exclude_newer(tmp_path: Path, setting: str, expected: str) -> None:
    write(tmp_path, {"pyproject.toml": f"[tool.cloudlet]\nexclude-newer = {setting}\n"})
    assert plan_dependencies(tmp_path).exclude_newer == expected


@pytest.mark.parametrize(
    "pyproject",
    [
        '[tool.cloudlet]\nexclude-newer = "last tuesday"\n',
        "[project\nname = 'broken'\n",
        '[project]\nname = "x"\ndependencies = "fastapi"\n',
        '[project]\nname = "x"\nrequires-python = 3\n',
        '[tool.poetry.dependencies]\nfastapi = "latest"\n',
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, pyproject: str) -> None:
    write(tmp_path, {"pyproject.toml": pyproject})
    with pytest.raises(BuildError) as caught:
        plan_dependencies(tmp_path)
    assert (caught.value.status, caught.value.error_code) == (
        "building_image_failed",
        "invalid_pyproject",
    )


def test_install_commands(tmp_path: Path) -> None:
    python = tmp_path / "venv" / "bin" / "python"
    write(tmp_path, {"pyproject.toml": PROJECT + '[tool.cloudlet]\nexclude-newer = "2024-01-01"\n'})
    (tmp_path / "uv.lock").write_text("")
    command, extra_env = _install_command("uv", plan_dependencies(tmp_path), tmp_path, python)
    assert command == ["uv", "sync", "--frozen", "--no-dev"]
    assert extra_env == {"UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv")}

    (tmp_path / "uv.lock").unlink()
    command, extra_env = _install_command("uv", plan_dependencies(tmp_path), tmp_path, python)
    assert command == [
        "uv", "pip", "install", "--python", str(python),
        "fastapi>=0.110", "httpx", "--exclude-newer", "2024-01-01",
    ]  # fmt: skip
    assert extra_env == {}

    write(tmp_path, {"pyproject.toml": PROJECT + BUILD_SYSTEM})
    command, _ = _install_command("uv", plan_dependencies(tmp_path), tmp_path, python)
    assert command == ["uv", "pip", "install", "--python", str(python), str(tmp_path)]

    write(tmp_path, {"pyproject.toml": TOOLS_ONLY, "requirements.txt": "flask"})
    command, _ = _install_command("uv", plan_dependencies(tmp_path), tmp_path, python)
    assert command == ["uv", "pip", "install", "--python", str(python), "-r", "requirements.txt"]


def test_uv_environment() -> None:
    base = {"PATH": "/usr/bin", "VIRTUAL_ENV": "/srv/cloudlet/.venv", "UV_PYTHON_DOWNLOADS": "auto"}
    env = uv_environment(base, Path("/cache"))
    assert env["PATH"] == "/usr/bin"
    assert "VIRTUAL_ENV" not in env
    assert env["UV_CACHE_DIR"] == "/cache"
    assert env["UV_PYTHON_DOWNLOADS"] == "never"
    assert env["UV_NO_PROGRESS"] == "1"
    assert env["UV_LINK_MODE"] == "copy"
    assert uv_environment({"UV_LINK_MODE": "clone"}, Path("/c"))["UV_LINK_MODE"] == "clone"
