from pathlib import Path

import pytest

from cloudlet.build import BuildError
from cloudlet.build.entrypoint import AppLocation, find_app

APP = "from fastapi import FastAPI\n\napp = FastAPI()\n"


def project(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def found(root: Path, files: dict[str, str]) -> tuple[str, Path, str]:
    location = find_app(project(root, files))
    assert isinstance(location, AppLocation)
    return location.entrypoint, location.import_root, location.reason


def test_tool_fastapi_entrypoint_wins(tmp_path: Path) -> None:
    entrypoint, root, reason = found(
        tmp_path,
        {
            "pyproject.toml": '[tool.fastapi]\nentrypoint = "shop.web:application"\n',
            "main.py": APP,
            "shop/__init__.py": "",
            "shop/web.py": "from fastapi import FastAPI\napplication = FastAPI()\n",
        },
    )
    assert (entrypoint, root) == ("shop.web:application", tmp_path)
    assert "[tool.fastapi] entrypoint" in reason


def test_tool_fastapi_entrypoint_in_a_src_layout(tmp_path: Path) -> None:
    entrypoint, root, _ = found(
        tmp_path,
        {
            "pyproject.toml": '[tool.fastapi]\nentrypoint = "shop.main:app"\n',
            "src/shop/__init__.py": "",
            "src/shop/main.py": APP,
        },
    )
    assert (entrypoint, root) == ("shop.main:app", tmp_path / "src")


def test_tool_fastapi_entrypoint_from_an_installed_package(tmp_path: Path) -> None:
    entrypoint, root, reason = found(
        tmp_path, {"pyproject.toml": '[tool.fastapi]\nentrypoint = "vendor_app.asgi:app"\n'}
    )
    assert (entrypoint, root) == ("vendor_app.asgi:app", tmp_path)
    assert "installed package" in reason


@pytest.mark.parametrize(
    "entrypoint, files",
    [
        ("main", {"main.py": APP}),
        ("main:", {"main.py": APP}),
        ("main.py:app", {"main.py": APP}),
        ("main:application", {"main.py": APP}),  # the module never defines it
    ],
)
def test_bad_tool_fastapi_entrypoint(
    tmp_path: Path, entrypoint: str, files: dict[str, str]
) -> None:
    files = {**files, "pyproject.toml": f'[tool.fastapi]\nentrypoint = "{entrypoint}"\n'}
    with pytest.raises(BuildError) as caught:
        find_app(project(tmp_path, files))
    assert caught.value.error_code == "invalid_entrypoint"
    assert caught.value.status == "building_image_failed"


def test_main_py(tmp_path: Path) -> None:
    entrypoint, root, reason = found(tmp_path, {"main.py": APP, "app.py": APP})
    assert (entrypoint, root) == ("main:app", tmp_path)
    assert "main.py" in reason


@pytest.mark.parametrize(
    "source, attr",
    [
        ("from fastapi import FastAPI\napi = FastAPI()\n", "api"),
        ("from fastapi import FastAPI\nzeta = FastAPI()\nalpha = FastAPI()\n", "alpha"),
        ("from fastapi import FastAPI as F\nweb = F(title='x')\n", "web"),
        ("import fastapi\nweb = fastapi.FastAPI()\n", "web"),
        ("import fastapi as fa\nweb: fa.FastAPI = fa.FastAPI()\n", "web"),
        ("from fastapi import FastAPI\nclass Mine(FastAPI):\n    pass\nweb = Mine()\n", "web"),
        (
            "from fastapi import FastAPI\n"
            "def create_app() -> FastAPI:\n    return FastAPI()\n"
            "web = create_app()\n",
            "web",
        ),
        ("from fastapi import FastAPI\nif True:\n    web = FastAPI()\n", "web"),
        ("from fastapi import FastAPI\napi = FastAPI()\napp = FastAPI()\n", "app"),
    ],
)
def test_app_name_rules(tmp_path: Path, source: str, attr: str) -> None:
    entrypoint, _, _ = found(tmp_path, {"api.py": source})
    assert entrypoint == f"api:{attr}"


def test_app_main_in_a_package(tmp_path: Path) -> None:
    entrypoint, root, _ = found(tmp_path, {"app/__init__.py": "", "app/main.py": APP})
    assert (entrypoint, root) == ("app.main:app", tmp_path)


def test_app_main_without_init_runs_from_its_folder(tmp_path: Path) -> None:
    entrypoint, root, _ = found(tmp_path, {"app/main.py": APP})
    assert (entrypoint, root) == ("main:app", tmp_path / "app")


def test_main_py_that_imports_the_app(tmp_path: Path) -> None:
    entrypoint, root, _ = found(
        tmp_path,
        {
            "main.py": "from shop.core import app\n",
            "shop/__init__.py": "",
            "shop/core.py": "from .factory import create_app\n\napp = create_app()\n",
            "shop/factory.py": "from fastapi import FastAPI\n\n"
            "def create_app():\n    app = FastAPI()\n    return app\n",
        },
    )
    assert (entrypoint, root) == ("main:app", tmp_path)


def test_main_py_that_only_launches_uvicorn(tmp_path: Path) -> None:
    entrypoint, root, reason = found(
        tmp_path,
        {
            "main.py": 'import uvicorn\n\nif __name__ == "__main__":\n'
            '    uvicorn.run("backend.server:app", host="127.0.0.1", port=8000, reload=True)\n',
            "backend/__init__.py": "",
            "backend/server.py": "from somewhere_else import make\napp = make()\n",
        },
    )
    assert (entrypoint, root) == ("backend.server:app", tmp_path)
    assert "uvicorn.run" in reason


def test_uvicorn_run_from_import(tmp_path: Path) -> None:
    entrypoint, _, _ = found(
        tmp_path,
        {
            "main.py": "from uvicorn import run\nrun(app='server:api')\n",
            "server.py": "api = object()\n",
        },
    )
    assert entrypoint == "server:api"


def test_uvicorn_factory_target_is_not_taken_as_an_app(tmp_path: Path) -> None:
    entrypoint, _, _ = found(
        tmp_path,
        {
            "main.py": "import uvicorn\nuvicorn.run('factory:create', factory=True)\n",
            "factory.py": "from fastapi import FastAPI\ndef create():\n    return FastAPI()\n",
            "web.py": APP,
        },
    )
    assert entrypoint == "web:app"


def test_non_default_name_in_non_default_file(tmp_path: Path) -> None:
    entrypoint, root, reason = found(
        tmp_path,
        {
            "server.py": "from fastapi import FastAPI\n\napplication = FastAPI()\n",
            "README.md": "hello",
        },
    )
    assert (entrypoint, root) == ("server:application", tmp_path)
    assert "scanning" in reason


def test_src_layout(tmp_path: Path) -> None:
    entrypoint, root, _ = found(
        tmp_path,
        {"src/shop/__init__.py": "", "src/shop/api/__init__.py": "", "src/shop/api/web.py": APP},
    )
    assert (entrypoint, root) == ("shop.api.web:app", tmp_path / "src")


def test_scan_prefers_shallow_files_and_app_names(tmp_path: Path) -> None:
    entrypoint, _, _ = found(
        tmp_path,
        {
            "a/b/deep.py": APP,
            "svc.py": "from fastapi import FastAPI\nsub = FastAPI()\n",
            "web.py": "from fastapi import FastAPI\napi = FastAPI()\n",
        },
    )
    assert entrypoint == "web:api"


def test_scan_skips_tests_venvs_and_hidden_folders(tmp_path: Path) -> None:
    entrypoint, _, _ = found(
        tmp_path,
        {
            "tests/app.py": APP,
            "test_main.py": APP,
            ".venv/lib/site.py": APP,
            "myenv/pyvenv.cfg": "home = /usr/bin",
            "myenv/a.py": APP,
            ".hidden/a.py": APP,
            "node_modules/x/a.py": APP,
            "service/web.py": APP,
        },
    )
    assert entrypoint == "web:app"


def test_default_file_without_an_app_falls_back_to_the_scan(tmp_path: Path) -> None:
    entrypoint, _, _ = found(
        tmp_path,
        {
            "main.py": "import typer\napp = typer.Typer()\n",
            "broken.py": "def (:\n",
            "server.py": APP,
        },
    )
    assert entrypoint == "server:app"


def test_nothing_found(tmp_path: Path) -> None:
    project(tmp_path, {"main.py": "print('hello')\n", "util.py": "x = 1\n"})
    with pytest.raises(BuildError) as caught:
        find_app(tmp_path)
    error = caught.value
    assert (error.status, error.error_code) == ("building_image_failed", "app_not_found")
    assert "main.py" in error.message and "scanned 2 Python files" in error.message
    assert '[tool.fastapi]\nentrypoint = "main:app"' in error.hint
    assert "fastapi cloud apps update --directory" in error.hint


def test_nothing_is_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    project(
        tmp_path,
        {"main.py": f"open({str(marker)!r}, 'w').close()\n" + APP},
    )
    assert find_app(tmp_path).entrypoint == "main:app"
    assert not marker.exists()


# -- a default file's `app` / `api` that is not visibly FastAPI() ------------------------------

RQ_DASHBOARD = (
    "from rq_dashboard_fast import RedisQueueDashboard\n\n"
    'app = RedisQueueDashboard(redis_url="redis://localhost:6379", prefix="")\n'
)


def test_default_file_app_from_a_third_party_class(tmp_path: Path) -> None:
    # fastapi-cli imports main.py and takes `app` (a FastAPI subclass); so does Cloudlet, even
    # though a proven FastAPI() elsewhere would be found by the scan.
    entrypoint, root, reason = found(tmp_path, {"main.py": RQ_DASHBOARD, "other.py": APP})
    assert (entrypoint, root) == ("main:app", tmp_path)
    assert "RedisQueueDashboard(...)" in reason and "importing the app checks it" in reason


@pytest.mark.parametrize(
    "source, attr",
    [
        ("from rq_dashboard_fast.app import app\n", "app"),
        ("from vendor import make\napi = make()\n", "api"),
        ("from vendor import make\napi = make()\napp = make()\n", "app"),
        ("from vendor import Dashboard\napp: Dashboard = Dashboard()\n", "app"),
        ("import typer\ncli = typer.Typer()\nfrom vendor import make\napi = make()\n", "api"),
        # A provable FastAPI instance still wins over an unprovable `app`.
        ("from fastapi import FastAPI\nfrom vendor import D\napp = D()\nweb = FastAPI()\n", "web"),
    ],
)
def test_default_file_app_or_api_by_name(tmp_path: Path, source: str, attr: str) -> None:
    entrypoint, _, _ = found(tmp_path, {"main.py": source})
    assert entrypoint == f"main:{attr}"


def test_default_file_app_imported_from_the_project(tmp_path: Path) -> None:
    entrypoint, _, reason = found(
        tmp_path,
        {
            "main.py": "from shop.web import app\n",
            "shop/__init__.py": "",
            "shop/web.py": "from vendor import Dashboard\napp = Dashboard()\n",
        },
    )
    assert entrypoint == "main:app"
    assert "imported from shop.web" in reason


@pytest.mark.parametrize(
    "source",
    [
        "import typer\napp = typer.Typer()\n",
        "from typer import Typer as T\napp = T()\n",
        "from flask import Flask\napp = Flask(__name__)\n",
        "from fastapi import APIRouter\napi = APIRouter()\n",
        "app = 'hello'\napi = [1, 2]\n",
        "app = None\n",
        "def make():\n    pass\napp = make\n",
        "import shop.web as app\n",
        "def app(scope, receive, send):\n    pass\n",
        "from core import app\n",  # core.py's `app` is a string
        "from core import missing as app\n",
    ],
)
def test_default_file_app_that_visibly_is_not_one(tmp_path: Path, source: str) -> None:
    entrypoint, _, reason = found(
        tmp_path, {"main.py": source, "core.py": "app = 'x'\n", "server.py": APP}
    )
    assert entrypoint == "server:app"
    assert "scanning" in reason


def test_scan_stays_strict(tmp_path: Path) -> None:
    project(tmp_path, {"web.py": RQ_DASHBOARD, "util/helpers.py": "from x import y\napp = y()\n"})
    with pytest.raises(BuildError) as caught:
        find_app(tmp_path)
    assert caught.value.error_code == "app_not_found"


def test_scan_prefers_a_proven_app_over_an_unproven_one(tmp_path: Path) -> None:
    entrypoint, _, _ = found(tmp_path, {"web.py": RQ_DASHBOARD, "deep/er/server.py": APP})
    assert entrypoint == "server:app"


# -- namespace packages and the import root ---------------------------------------------------

TITILER_MAIN = (
    "from fastapi import FastAPI\n"
    "from titiler.application import __version__ as titiler_version\n"
    "from titiler.application.settings import ApiSettings\n"
    "from titiler.core.factory import TilerFactory\n\n"
    "app = FastAPI(version=titiler_version)\n"
)


def test_namespace_package_named_by_the_module_own_imports(tmp_path: Path) -> None:
    # titiler-application: `titiler/` has no __init__.py, the code imports titiler.application.
    entrypoint, root, reason = found(
        tmp_path,
        {
            "titiler/application/__init__.py": '__version__ = "2.4.0"\n',
            "titiler/application/main.py": TITILER_MAIN,
            "titiler/application/settings.py": "class ApiSettings: ...\n",
            "pyproject.toml": '[project]\nname = "titiler.application"\n',
        },
    )
    assert (entrypoint, root) == ("titiler.application.main:app", tmp_path)
    assert "imported as titiler.application.main" in reason


def test_namespace_package_in_a_default_file(tmp_path: Path) -> None:
    # app/ without __init__.py, but the code imports app.routers: run it as app.main.
    entrypoint, root, _ = found(
        tmp_path,
        {
            "app/main.py": "from fastapi import FastAPI\nfrom app.routers import items\n"
            "app = FastAPI()\n",
            "app/routers/__init__.py": "",
            "app/routers/items.py": "",
        },
    )
    assert (entrypoint, root) == ("app.main:app", tmp_path)


@pytest.mark.parametrize("package_init", [True, False])
def test_backend_app_layout_keeps_its_root(tmp_path: Path, package_init: bool) -> None:
    files = {
        "backend/app/main.py": "from fastapi import FastAPI\nfrom app.core import settings\n"
        "app = FastAPI()\n",
        "backend/app/core/__init__.py": "settings = 1\n",
    }
    if package_init:
        files["backend/app/__init__.py"] = ""
    entrypoint, root, _ = found(tmp_path, files)
    assert (entrypoint, root) == ("app.main:app", tmp_path / "backend")


@pytest.mark.parametrize(
    "imports",
    [
        "from shop.db import engine\n",
        "from src.shop.db import engine\n",  # never moves the root above src/
        "import src.shop.db\n",
    ],
)
def test_src_layout_keeps_src_as_its_root(tmp_path: Path, imports: str) -> None:
    entrypoint, root, _ = found(
        tmp_path,
        {
            "src/shop/__init__.py": "",
            "src/shop/db.py": "engine = None\n",
            "src/shop/server.py": imports + APP,
        },
    )
    assert (entrypoint, root) == ("shop.server:app", tmp_path / "src")


def test_src_layout_with_a_namespace_package(tmp_path: Path) -> None:
    entrypoint, root, _ = found(
        tmp_path,
        {"src/shop/db.py": "engine = None\n", "src/shop/server.py": "import shop.db\n" + APP},
    )
    assert (entrypoint, root) == ("shop.server:app", tmp_path / "src")


def test_flat_main_py_keeps_the_project_root(tmp_path: Path) -> None:
    entrypoint, root, reason = found(
        tmp_path,
        {
            "main.py": "from fastapi import FastAPI\nfrom routers.items import router\n" + APP,
            "routers/items.py": "router = None\n",
        },
    )
    assert (entrypoint, root) == ("main:app", tmp_path)
    assert "imported as" not in reason


def test_folder_named_like_an_installed_package_is_not_taken_as_one(tmp_path: Path) -> None:
    # `from fastapi import FastAPI` does not lead into ./fastapi/: the root stays there.
    entrypoint, root, _ = found(tmp_path, {"fastapi/server.py": APP})
    assert (entrypoint, root) == ("server:app", tmp_path / "fastapi")
