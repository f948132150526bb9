from pathlib import Path

import pytest

from cloudlet.build.poetry import poetry_requirements, python_constraint_to_marker, to_pep440

# Poetry's documented examples (python-poetry.org/docs/dependency-specification).
CONSTRAINTS = {
    "^1.2.3": ">=1.2.3,<2.0.0",
    "^1.2": ">=1.2,<2.0",
    "^1": ">=1,<2",
    "^0.2.3": ">=0.2.3,<0.3.0",
    "^0.0.3": ">=0.0.3,<0.0.4",
    "^0.0": ">=0.0,<0.1",
    "^0": ">=0,<1",
    "^1.2.3b1": ">=1.2.3b1,<2.0.0",
    "~1.2.3": ">=1.2.3,<1.3.0",
    "~1.2": ">=1.2,<1.3",
    "~1": ">=1,<2",
    "*": "",
    "": "",
    "1.*": "==1.*",
    "1.2.*": "==1.2.*",
    "1.2.3": "==1.2.3",
    "=1.2.3": "==1.2.3",
    "==1.2.3": "==1.2.3",
    "~=1.4": "~=1.4",
    "~=1": ">=1,<2",
    "!=1.5": "!=1.5",
    ">= 1.2, < 1.5": ">=1.2,<1.5",
    ">=1.2 <1.5": ">=1.2,<1.5",
    ">=1.2,<1.5,!=1.3": ">=1.2,<1.5,!=1.3",
    # PEP 440 has no "or": the smallest range covering every alternative.
    "^1.0 || ^2.0": ">=1.0,<3.0",
    ">=2.0,<3 || ^4": ">=2.0,<5",
    "1.2.* || 1.4.*": ">=1.2,<1.5",
    "^3.8 || *": "",
}


@pytest.mark.parametrize("poetry, pep440", CONSTRAINTS.items())
def test_constraints(poetry: str, pep440: str) -> None:
    assert to_pep440(poetry) == pep440


@pytest.mark.parametrize("bad", ["^", "latest", ">=1.0 || banana"])
def test_nonsense_is_an_error(bad: str) -> None:
    with pytest.raises(ValueError):
        to_pep440(bad)


def test_python_markers_keep_or() -> None:
    assert python_constraint_to_marker("^3.8") == (
        'python_full_version >= "3.8" and python_full_version < "4.0"'
    )
    assert python_constraint_to_marker(">=3.8,<3.11 || >=3.12") == (
        '(python_full_version >= "3.8" and python_full_version < "3.11")'
        ' or (python_full_version >= "3.12")'
    )
    assert python_constraint_to_marker("*") == ""


def test_dependency_tables(tmp_path: Path) -> None:
    dependencies = {
        "python": "^3.11",
        "fastapi": "^0.110.0",
        "uvicorn": {"version": "~0.29", "extras": ["standard"]},
        "requests": "*",
        "dev-only-extra": {"version": "^1.0", "optional": True},
        "mylib": {"git": "https://github.com/example/mylib.git", "tag": "v1.0"},
        "sub": {"git": "https://example.com/mono.git", "subdirectory": "pkgs/sub"},
        "local": {"path": "libs/local", "develop": True},
        "wheel": {"url": "https://example.com/wheel-1.0-py3-none-any.whl"},
        "tomli": {"version": "^2.0", "python": "<3.11"},
        "pywin32": {
            "version": "*",
            "platform": "win32",
            "markers": "implementation_name == 'cpython'",
        },
        "numpy": [
            {"version": "^1.24", "python": "<3.12"},
            {"version": "^2.0", "python": ">=3.12"},
        ],
    }
    local_uri = (tmp_path / "libs" / "local").resolve().as_uri()
    assert poetry_requirements(dependencies, tmp_path) == [
        "fastapi>=0.110.0,<0.111.0",
        "uvicorn[standard]>=0.29,<0.30",
        "requests",
        "mylib @ git+https://github.com/example/mylib.git@v1.0",
        "sub @ git+https://example.com/mono.git#subdirectory=pkgs/sub",
        f"local @ {local_uri}",
        "wheel @ https://example.com/wheel-1.0-py3-none-any.whl",
        'tomli>=2.0,<3.0 ; python_full_version < "3.11"',
        "pywin32 ; (sys_platform == \"win32\") and (implementation_name == 'cpython')",
        'numpy>=1.24,<2.0 ; python_full_version < "3.12"',
        'numpy>=2.0,<3.0 ; python_full_version >= "3.12"',
    ]
