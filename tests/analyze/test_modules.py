"""Finding modules and resolving imports across them."""

from __future__ import annotations

from cloudlet.analyze.modules import find_sources, load_project

ROUTE = """
from fastapi import FastAPI
{imports}
app = FastAPI()

@app.get("/")
async def index():
    return {call}
"""
HELPER = """
import requests

def fetch():
    return requests.get("http://x")
"""


def _reaches_helper(workbench, files: dict[str, str], helper: str = "app/services/http.py") -> bool:
    return (helper, 4) in workbench.reported(files)


def test_absolute_import_and_alias(workbench) -> None:
    route = ROUTE.format(imports="from app.services.http import fetch as get_it", call="get_it()")
    assert _reaches_helper(workbench, {"app/main.py": route, "app/services/http.py": HELPER})


def test_module_alias(workbench) -> None:
    route = ROUTE.format(imports="import app.services.http as h", call="h.fetch()")
    assert _reaches_helper(workbench, {"app/main.py": route, "app/services/http.py": HELPER})


def test_dotted_import_without_alias(workbench) -> None:
    files = {
        "app/main.py": ROUTE.format(imports="import lib.http", call="lib.http.fetch()"),
        "lib/__init__.py": "",
        "lib/http.py": HELPER,
    }
    assert ("lib/http.py", 4) in workbench.reported(files)


def test_relative_imports_one_and_two_levels(workbench) -> None:
    files = {
        "app/__init__.py": "",
        "app/api/__init__.py": "",
        "app/api/routes.py": ROUTE.format(
            imports="from ..services.http import fetch\nfrom . import deps", call="fetch()"
        ),
        "app/api/deps.py": "",
        "app/services/__init__.py": "",
        "app/services/http.py": HELPER,
    }
    assert _reaches_helper(workbench, files)


def test_reexport_through_package_init(workbench) -> None:
    files = {
        "app/__init__.py": "",
        "app/main.py": ROUTE.format(imports="from app.services import fetch", call="fetch()"),
        "app/services/__init__.py": "from .http import fetch as fetch\n",
        "app/services/http.py": HELPER,
    }
    assert _reaches_helper(workbench, files)


def test_star_import(workbench) -> None:
    files = {
        "app/main.py": ROUTE.format(imports="from app.services.http import *", call="fetch()"),
        "app/services/http.py": HELPER,
    }
    assert _reaches_helper(workbench, files)


def test_sibling_import_from_a_script_folder(workbench) -> None:
    # uvicorn main:app run from backend/: `from services import http` means backend/services.
    files = {
        "backend/main.py": ROUTE.format(imports="from services import http", call="http.fetch()"),
        "backend/services/http.py": HELPER,
    }
    assert _reaches_helper(workbench, files, "backend/services/http.py")


def test_stdlib_name_is_not_taken_by_a_project_module(workbench) -> None:
    files = {
        "backend/main.py": ROUTE.format(
            imports="import email", call="email.message_from_string('')"
        ),
        "backend/email.py": "import time\n\ndef message_from_string(s):\n    time.sleep(1)\n",
    }
    assert workbench.reported(files) == set()


def test_module_names_follow_packages_and_src_layout(workbench) -> None:
    root = workbench.write(
        {
            "src/shop/__init__.py": "",
            "src/shop/api/__init__.py": "",
            "src/shop/api/routes.py": "",
            "scripts/tool.py": "",
            ".venv/pyvenv.cfg": "",
            ".venv/lib/site.py": "",
            "node_modules/x.py": "",
        }
    )
    names = {s.rel: s.module for s in find_sources(root)}
    assert names == {
        "src/shop/__init__.py": "shop",
        "src/shop/api/__init__.py": "shop.api",
        "src/shop/api/routes.py": "shop.api.routes",
        "scripts/tool.py": "scripts.tool",
    }


def test_exclude_patterns(workbench) -> None:
    root = workbench.write({"app/main.py": "", "tests/test_x.py": "", "app/gen/big.py": ""})
    rels = {s.rel for s in find_sources(root, ["tests", "app/gen/*"])}
    assert rels == {"app/main.py"}


def test_a_file_that_does_not_parse_is_reported_not_fatal(workbench) -> None:
    root = workbench.write({"app/main.py": "def broken(:\n", "app/ok.py": "x = 1\n"})
    project = load_project(root)
    assert project.by_path["app/main.py"].syntax_error
    assert project.by_path["app/ok.py"].syntax_error is None


def test_inside_a_package_imports_are_absolute(workbench) -> None:
    # app/redis.py does not shadow the redis library for `import redis` in app/main.py.
    files = {
        "app/__init__.py": "",
        "app/redis.py": "def Redis():\n    return None\n",
        "app/main.py": ROUTE.format(imports="import redis\nr = redis.Redis()", call="r.get('k')"),
    }
    assert ("app/main.py", 8) in workbench.reported(files)
