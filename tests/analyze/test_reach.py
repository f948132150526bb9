"""Reach: methods through simple type inference, context managers, properties, callables, and
what offloading looks like. `# BLOCKS` lines must be reported, `# FINE` lines must not."""

from __future__ import annotations

import pytest

CASES: dict[str, dict[str, str]] = {
    "constructor assignment, annotation, Depends return type": {
        "app/main.py": """
            import httpx
            from fastapi import Depends, FastAPI
            from sqlalchemy.orm import Session, sessionmaker
            from sqlalchemy import create_engine
            app = FastAPI()
            SessionLocal = sessionmaker(bind=create_engine("sqlite://"))

            def get_db():
                db = SessionLocal()
                yield db

            class Api:
                def __init__(self, client: httpx.Client):
                    self.client = client

                def rates(self):
                    return self.client.get("/rates")  # BLOCKS

            def get_api() -> Api:
                return Api(httpx.Client())

            @app.get("/")
            async def index(db=Depends(get_db), api: Api = Depends(get_api)):
                db.execute("select 1")  # BLOCKS
                session: Session = SessionLocal()
                session.commit()  # BLOCKS
                return api.rates()
        """,
    },
    "class attributes, inheritance, module-level instances": {
        "app/clients.py": """
            import requests

            class Base:
                session = requests.Session()

                def call(self, url):
                    return self.session.get(url)  # BLOCKS

            class Billing(Base):
                pass

            billing = Billing()
        """,
        "app/main.py": """
            from fastapi import FastAPI
            from app.clients import billing
            app = FastAPI()

            @app.get("/")
            async def index():
                return billing.call("http://b")
        """,
    },
    "context managers: the value `with` binds and the @contextmanager body": {
        "app/main.py": """
            import sqlite3
            from contextlib import contextmanager
            from fastapi import FastAPI
            app = FastAPI()

            @contextmanager
            def connection():
                conn = sqlite3.connect("app.db")  # BLOCKS
                yield conn

            class Timer:
                def __enter__(self):
                    open("/tmp/t", "a")  # BLOCKS
                    return self

                def __exit__(self, *exc):
                    return None

            @app.get("/")
            async def index():
                with connection() as conn, Timer():
                    return conn.execute("select 1")  # BLOCKS
        """,
    },
    "properties and lazy-loaded relationships": {
        "app/main.py": """
            from pathlib import Path
            from fastapi import FastAPI
            from sqlalchemy import create_engine
            from sqlalchemy.orm import DeclarativeBase, Mapped, Session, relationship
            app = FastAPI()

            class Base(DeclarativeBase):
                pass

            class Author(Base):
                books: Mapped[list["Book"]] = relationship()
                tags: Mapped[list["Tag"]] = relationship(lazy="selectin")

            class Config:
                @property
                def flags(self):
                    return (Path(__file__).parent / "flags.json").read_text()  # BLOCKS

            session = Session(create_engine("sqlite://"))
            config = Config()

            @app.get("/")
            async def index():
                author = session.get(Author, 1)  # BLOCKS
                titles = [b for b in author.books]  # BLOCKS
                tags = author.tags  # FINE
                return config.flags
        """,
    },
    "generators run when iterated, not when called": {
        "app/main.py": """
            from fastapi import FastAPI
            app = FastAPI()

            def rows():
                yield open("data.csv").read()  # BLOCKS

            def unused_rows():
                yield open("other.csv").read()  # FINE

            @app.get("/")
            async def index():
                unused_rows()
                return list(rows())
        """,
    },
    "offloading: passed callables are not run here": {
        "app/main.py": """
            import asyncio
            import functools
            import anyio
            import requests
            from concurrent.futures import ThreadPoolExecutor
            from fastapi import FastAPI
            from fastapi.concurrency import run_in_threadpool
            app = FastAPI()
            pool = ThreadPoolExecutor()

            def fetch(url):
                return requests.get(url)  # BLOCKS

            def offloaded_only(url):
                return requests.get(url, timeout=1)  # FINE

            @app.get("/")
            async def index(url: str):
                await run_in_threadpool(offloaded_only, url)
                await asyncio.to_thread(offloaded_only, url)
                await anyio.to_thread.run_sync(functools.partial(offloaded_only, url))
                await asyncio.get_running_loop().run_in_executor(None, lambda: requests.get(url))
                pool.submit(offloaded_only, url)
                return await run_in_threadpool(fetch(url))
        """,
    },
    "waiting on a thread's result blocks the loop": {
        "app/main.py": """
            from concurrent.futures import ThreadPoolExecutor
            from fastapi import FastAPI
            app = FastAPI()
            pool = ThreadPoolExecutor()

            def work():
                return 1

            @app.get("/")
            async def index():
                return pool.submit(work).result()  # BLOCKS
        """,
    },
    "a project decorator that offloads breaks the edge": {
        "app/main.py": """
            import functools
            import time
            from fastapi import FastAPI
            from starlette.concurrency import run_in_threadpool
            app = FastAPI()

            def in_thread(fn):
                @functools.wraps(fn)
                async def wrapper(*args):
                    return await run_in_threadpool(fn, *args)
                return wrapper

            @in_thread
            def slow():
                time.sleep(1)  # FINE

            @app.get("/")
            async def index():
                return await slow()
        """,
    },
    "callables called by a helper, partial, sorted(key=...)": {
        "app/main.py": """
            import functools
            import os
            import requests
            from fastapi import FastAPI
            app = FastAPI()

            def retry(fn):
                return fn()

            def size(name):
                return os.path.getsize(name)  # BLOCKS

            def ping():
                return requests.get("http://ping")  # BLOCKS

            @app.get("/")
            async def index(names: list[str]):
                retry(ping)
                call = functools.partial(requests.get, "http://p")
                call()  # BLOCKS
                return sorted(names, key=size)
        """,
    },
    "parameters typed by their call sites, global and app.state": {
        "app/main.py": """
            from contextlib import asynccontextmanager
            import httpx
            import requests
            from fastapi import FastAPI, Request

            client = None

            @asynccontextmanager
            async def lifespan(app):
                global client
                client = httpx.Client()
                app.state.http = requests.Session()
                yield

            app = FastAPI(lifespan=lifespan)

            def fetch(session, url):
                return session.get(url)  # BLOCKS

            @app.get("/")
            async def index(request: Request):
                client.get("http://a")  # BLOCKS
                request.app.state.http.post("http://b")  # BLOCKS
                return fetch(requests.Session(), "http://c")
        """,
    },
    "more libraries: peewee models, Elasticsearch, Celery results, file locks": {
        "app/main.py": """
            import fcntl
            import peewee
            from celery.result import AsyncResult
            from elasticsearch import Elasticsearch
            from tortoise.models import Model as TortoiseModel
            from fastapi import FastAPI
            app = FastAPI()
            es = Elasticsearch("http://es")

            class User(peewee.Model):
                pass

            class Note(TortoiseModel):
                pass

            @app.get("/")
            async def index(task_id: str):
                User.get(User.id == 1)  # BLOCKS
                rows = [u for u in User.select().where(User.id > 1)]  # BLOCKS
                await Note.get(id=1)  # FINE
                es.search(index="notes")  # BLOCKS
                es.indices.refresh(index="notes")  # BLOCKS
                AsyncResult(task_id).get(timeout=5)  # BLOCKS
                with open("/tmp/lock", "w") as fh:  # BLOCKS
                    fcntl.flock(fh, fcntl.LOCK_EX)  # BLOCKS
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # FINE
                    fcntl.flock(fh, fcntl.LOCK_UN)  # FINE
        """,
    },
    "async libraries with blocking-looking names are fine": {
        "app/main.py": """
            import asyncio
            import aiofiles
            import httpx
            import redis.asyncio as redis
            from motor.motor_asyncio import AsyncIOMotorClient
            from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
            from fastapi import FastAPI
            app = FastAPI()
            r = redis.Redis()
            mongo = AsyncIOMotorClient()
            Session = async_sessionmaker()

            @app.get("/")
            async def index():
                async with httpx.AsyncClient() as client:
                    await client.get("http://x")  # FINE
                await r.get("k")  # FINE
                await mongo.db.users.find_one({})  # FINE
                async with Session() as session:
                    await session.execute("select 1")  # FINE
                async with aiofiles.open("f") as f:
                    await f.read()  # FINE
                await asyncio.sleep(1)  # FINE
        """,
    },
    "catalog: databases, cloud SDKs, sockets, DNS, SMTP, CPU, pandas": {
        "app/main.py": """
            import hashlib
            import smtplib
            import socket
            import bcrypt
            import boto3
            import pandas as pd
            import psycopg2
            import redis
            from fastapi import FastAPI, UploadFile
            from pymongo import MongoClient
            app = FastAPI()
            s3 = boto3.client("s3")
            db = MongoClient().shop
            cache = redis.Redis()

            @app.post("/")
            async def index(upload: UploadFile, password: str):
                conn = psycopg2.connect("dbname=x")  # BLOCKS
                with conn.cursor() as cur:
                    cur.execute("select 1")  # BLOCKS
                s3.put_object(Bucket="b", Key="k", Body=b"")  # BLOCKS
                s3.generate_presigned_url("get_object")  # FINE
                db.orders.insert_one({})  # BLOCKS
                cache.set("k", 1)  # BLOCKS
                cache.pipeline()  # FINE
                socket.gethostbyname("example.com")  # BLOCKS
                with smtplib.SMTP("mail") as smtp:  # BLOCKS
                    smtp.send_message(None)  # BLOCKS
                bcrypt.hashpw(password.encode(), bcrypt.gensalt())  # BLOCKS
                digest = hashlib.sha256(await upload.read()).hexdigest()  # BLOCKS
                token = hashlib.sha256(password.encode()).hexdigest()  # FINE
                df = pd.read_csv(upload.file)  # BLOCKS
                df.groupby("day").sum().to_parquet("out")  # BLOCKS
                upload.file.read()  # BLOCKS
        """,
    },
}


@pytest.mark.parametrize("name", list(CASES))
def test_reach(workbench, name: str) -> None:
    files = CASES[name]
    expected = {(rel, n) for rel, src in files.items() for n in workbench.marked(src, "# BLOCKS")}
    fine = {(rel, n) for rel, src in files.items() for n in workbench.marked(src, "# FINE")}
    found = workbench.reported(files)
    assert expected <= found, f"missed {sorted(expected - found)}"
    assert not (fine & found), f"false positives {sorted(fine & found)}"


def test_chain_and_call_site(workbench) -> None:
    analysis = workbench.analyze(
        {
            "app/main.py": """
                from fastapi import FastAPI
                from app.helpers import outer
                app = FastAPI()

                @app.get("/")
                async def index():
                    return outer()
            """,
            "app/helpers.py": """
                import time

                def outer():
                    return inner()

                def inner():
                    time.sleep(1)
            """,
        }
    )
    (finding,) = analysis.findings
    assert (finding.file, finding.line, finding.api) == ("app/helpers.py", 7, "time.sleep")
    assert (finding.call_site.file, finding.call_site.line) == ("app/main.py", 7)
    assert [(h.file, h.line, h.function, h.callee) for h in finding.chain] == [
        ("app/main.py", 7, "index", "outer"),
        ("app/helpers.py", 4, "outer", "inner"),
    ]
    assert finding.function == "inner"
    assert "await asyncio.sleep" in finding.fix


def test_mutual_recursion_entered_anywhere_reaches_everything(workbench) -> None:
    analysis = workbench.analyze(
        {
            "app/main.py": """
                import os
                import time
                from fastapi import FastAPI
                app = FastAPI()

                def a(n):
                    time.sleep(1)
                    return b(n - 1) if n else None

                def b(n):
                    os.listdir(".")
                    return a(n) if n else c()

                def c():
                    return b(0)

                @app.get("/a")
                async def from_a():
                    return a(3)

                @app.get("/b")
                async def from_b():
                    return b(3)
            """
        }
    )
    by_route = {}
    for finding in analysis.findings:
        by_route.setdefault(finding.entry.label, set()).add(finding.line)
    assert by_route == {"GET /a": {7, 11}, "GET /b": {7, 11}}
