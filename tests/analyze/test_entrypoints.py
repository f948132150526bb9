"""What runs on the event loop: FastAPI / Starlette semantics, one hook at a time.

Every case marks blocking lines with `# BLOCKS` (must be reported) or `# FINE` (must not be).
"""

from __future__ import annotations

import pytest

from cloudlet.analyze.infer import Inference

CASES: dict[str, str] = {
    "async route, not def route": """
        import time
        from fastapi import FastAPI
        app = FastAPI()

        @app.get("/a")
        async def a():
            time.sleep(1)  # BLOCKS

        @app.get("/b")
        def b():
            time.sleep(1)  # FINE
    """,
    "router verbs and api_route": """
        import time
        from fastapi import APIRouter
        router = APIRouter(prefix="/x")

        @router.api_route("/a", methods=["GET", "POST"])
        async def a():
            time.sleep(1)  # BLOCKS

        @router.delete("/b")
        async def b():
            open("f")  # BLOCKS
    """,
    "routers: project subclasses and FastAPI extension libraries, not Flask": """
        import time
        from fastapi import APIRouter
        from fastapi_utils.inferring_router import InferringRouter
        from flask import Flask

        class VersionedRouter(APIRouter):
            pass

        v1 = VersionedRouter()
        inferring = InferringRouter()
        flask_app = Flask(__name__)

        @v1.get("/a")
        async def a():
            time.sleep(1)  # BLOCKS

        @inferring.get("/b")
        async def b():
            time.sleep(2)  # BLOCKS

        @flask_app.get("/c")
        async def c():
            time.sleep(3)  # FINE
    """,
    "websocket handler": """
        import requests
        from fastapi import FastAPI, WebSocket
        app = FastAPI()

        @app.websocket("/ws")
        async def ws(websocket: WebSocket):
            requests.get("http://x")  # BLOCKS
    """,
    "async and sync dependencies": """
        import requests
        from typing import Annotated
        from fastapi import Depends, FastAPI
        app = FastAPI()

        async def auth():
            requests.get("http://auth")  # BLOCKS

        def sync_auth():
            requests.get("http://sync")  # FINE

        async def agen():
            requests.get("http://agen")  # BLOCKS
            yield 1

        class Checker:
            async def __call__(self):
                requests.get("http://inst")  # BLOCKS

        checker = Checker()
        User = Annotated[int, Depends(agen)]

        @app.get("/", dependencies=[Depends(auth)])
        def index(s=Depends(sync_auth), u: User = 0, c=Depends(checker)):
            return 1
    """,
    "router-level and app-level dependencies": """
        import time
        from fastapi import APIRouter, Depends, FastAPI

        async def verify():
            time.sleep(1)  # BLOCKS

        async def tenant():
            time.sleep(2)  # BLOCKS

        router = APIRouter(dependencies=[Depends(verify)])
        app = FastAPI(dependencies=[Depends(tenant)])
        app.include_router(router)
    """,
    "middleware: decorator, BaseHTTPMiddleware, pure ASGI": """
        import subprocess
        from fastapi import FastAPI
        from starlette.middleware.base import BaseHTTPMiddleware

        app = FastAPI()

        @app.middleware("http")
        async def stamp(request, call_next):
            subprocess.run(["hostname"])  # BLOCKS
            return await call_next(request)

        class Timing(BaseHTTPMiddleware):
            async def dispatch(self, request, call_next):
                open("/tmp/t").read()  # BLOCKS
                return await call_next(request)

        class Pure:
            def __init__(self, app):
                self.app = app
                open("/tmp/init")  # FINE

            async def __call__(self, scope, receive, send):
                open("/tmp/asgi")  # BLOCKS
                await self.app(scope, receive, send)

        app.add_middleware(Timing)
        app.add_middleware(Pure)
    """,
    "lifespan and on_event without lifespan": """
        import time
        from contextlib import asynccontextmanager
        from fastapi import FastAPI

        @asynccontextmanager
        async def lifespan(app):
            time.sleep(1)  # BLOCKS
            yield
            time.sleep(2)  # BLOCKS

        app = FastAPI(lifespan=lifespan)
    """,
    "sync on_event handlers run on the loop": """
        import json
        from fastapi import FastAPI
        app = FastAPI()

        @app.on_event("startup")
        def load():
            json.load(open("cfg.json"))  # BLOCKS

        def save():
            open("out.json", "w")  # BLOCKS

        app.router.add_event_handler("shutdown", save)
    """,
    "on_event handlers are ignored when the app has a lifespan": """
        import time
        from contextlib import asynccontextmanager
        from fastapi import FastAPI

        @asynccontextmanager
        async def lifespan(app):
            yield

        app = FastAPI(lifespan=lifespan)

        @app.on_event("startup")
        async def never_runs():
            time.sleep(1)  # FINE
    """,
    "exception handlers: async yes, sync no": """
        import requests
        from fastapi import FastAPI
        app = FastAPI()

        @app.exception_handler(ValueError)
        async def on_value(request, exc):
            requests.post("http://alert")  # BLOCKS

        def on_key(request, exc):
            requests.post("http://alert2")  # FINE

        app.add_exception_handler(KeyError, on_key)
    """,
    "background tasks: async yes, sync no": """
        import time
        from fastapi import BackgroundTasks, FastAPI
        app = FastAPI()

        async def notify():
            time.sleep(1)  # BLOCKS

        def report():
            time.sleep(2)  # FINE

        @app.post("/")
        def index(tasks: BackgroundTasks):
            tasks.add_task(notify)
            tasks.add_task(report)
    """,
    "StreamingResponse: async generator yes, sync generator no": """
        from fastapi import FastAPI
        from fastapi.responses import StreamingResponse
        app = FastAPI()

        async def chunks():
            yield open("big").read()  # BLOCKS

        def lines():
            yield open("small").read()  # FINE

        @app.get("/a")
        def a():
            return StreamingResponse(chunks())

        @app.get("/b")
        async def b():
            return StreamingResponse(lines())
    """,
    "validators of request models, also for def routes": """
        import requests
        from pydantic import BaseModel, field_validator
        from fastapi import FastAPI
        app = FastAPI()

        class Address(BaseModel):
            zip: str

            @field_validator("zip")
            @classmethod
            def known(cls, v):
                requests.get("http://zip/" + v)  # BLOCKS
                return v

        class Order(BaseModel):
            address: Address

        @app.post("/orders")
        def create(order: Order):
            return order
    """,
    "response models are validated on the loop for async routes only": """
        import requests
        from pydantic import BaseModel, field_validator
        from fastapi import FastAPI
        app = FastAPI()

        class Out(BaseModel):
            url: str

            @field_validator("url")
            @classmethod
            def reachable(cls, v):
                requests.head(v)  # BLOCKS
                return v

        class SyncOut(BaseModel):
            url: str

            @field_validator("url")
            @classmethod
            def reachable(cls, v):
                requests.head(v)  # FINE
                return v

        @app.get("/a", response_model=Out)
        async def a():
            return {"url": "http://a"}

        @app.get("/b")
        def b() -> SyncOut:
            return SyncOut(url="http://b")
    """,
    "def route wrapped by an async decorator": """
        import functools
        import time
        from fastapi import FastAPI
        app = FastAPI()

        def timed(fn):
            @functools.wraps(fn)
            async def wrapper(*args, **kwargs):
                open("/tmp/log", "a")  # BLOCKS
                return fn(*args, **kwargs)
            return wrapper

        @app.get("/")
        @timed
        def index():
            time.sleep(1)  # BLOCKS
    """,
    "an async decorator that offloads the def route": """
        import functools
        import time
        from fastapi import FastAPI
        from fastapi.concurrency import run_in_threadpool
        app = FastAPI()

        def offloaded(fn):
            @functools.wraps(fn)
            async def wrapper(*args, **kwargs):
                open("/tmp/audit", "a")  # BLOCKS
                return await run_in_threadpool(fn, *args, **kwargs)
            return wrapper

        @app.get("/")
        @offloaded
        def index():
            time.sleep(1)  # FINE
    """,
    "sync decorator keeps a def route in the threadpool": """
        import functools
        import time
        from fastapi import FastAPI
        app = FastAPI()

        def logged(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return fn(*args, **kwargs)
            return wrapper

        @app.get("/")
        @logged
        def index():
            time.sleep(1)  # FINE
    """,
    "callbacks handed to the loop and tasks": """
        import asyncio
        import time
        from fastapi import FastAPI
        app = FastAPI()

        def tick():
            time.sleep(1)  # BLOCKS

        async def worker():
            time.sleep(2)  # BLOCKS

        @app.get("/")
        async def index():
            asyncio.get_running_loop().call_soon(tick)
            asyncio.create_task(worker())
    """,
    "add_api_route and Starlette routes": """
        import time
        from fastapi import FastAPI
        from starlette.applications import Starlette
        from starlette.routing import Route

        async def a(request):
            time.sleep(1)  # BLOCKS

        def b(request):
            time.sleep(2)  # FINE

        async def c():
            time.sleep(3)  # BLOCKS

        star = Starlette(routes=[Route("/a", a), Route("/b", b)])
        app = FastAPI()
        app.add_api_route("/c", c)
    """,
    "import-time code and unused async functions are not on the loop": """
        import json
        CONFIG = json.load(open("config.json"))  # FINE

        async def never_called():
            open("x")  # FINE
    """,
}


@pytest.mark.parametrize("name", list(CASES))
def test_entry_points(workbench, name: str) -> None:
    source = CASES[name]
    expected = workbench.marked(source, "# BLOCKS")
    fine = workbench.marked(source, "# FINE")
    found = {line for _, line in workbench.reported({"app/main.py": source})}
    assert expected <= found, f"missed {sorted(expected - found)}"
    assert not (fine & found), f"false positives {sorted(fine & found)}"


def test_entry_reasons_labels_and_severity(workbench) -> None:
    analysis = workbench.analyze(
        {
            "app/main.py": """
                import time
                from fastapi import Depends, FastAPI
                app = FastAPI()

                async def dep():
                    time.sleep(1)

                @app.get("/items/{id}")
                async def item(id: int, d=Depends(dep)):
                    time.sleep(1)

                @app.on_event("startup")
                def boot():
                    time.sleep(1)
            """
        }
    )
    entries = {e.function.rpartition(".")[2]: e for e in analysis.entry_points.values()}
    assert entries["item"].reason == "async route"
    assert entries["item"].label == "GET /items/{id}"
    assert entries["dep"].reason == "async dependency"
    assert entries["dep"].users == ["GET /items/{id}"]
    assert entries["boot"].severity == "low"
    severities = {f.entry.function: f.severity for f in analysis.findings}
    assert severities == {"item": "normal", "dep": "normal", "boot": "low"}


def test_inference_is_reusable_alone(workbench) -> None:
    from cloudlet.analyze.catalog import default_catalog
    from cloudlet.analyze.modules import load_project

    root = workbench.write({"app/main.py": "from fastapi import FastAPI\napp = FastAPI()\n"})
    infer = Inference(load_project(root), default_catalog())
    body = infer.project.modules["app.main"].body
    assert {v.name for v in infer.lookup("app", body)} == {"fastapi.FastAPI"}
