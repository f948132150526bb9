from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import boto3
from fastapi import FastAPI
from sqlalchemy import create_engine, text

engine = create_engine("postgresql+psycopg2://app@db/app")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    s3 = boto3.client("s3")
    app.state.worker_id = 7
    yield
    s3.upload_file("/tmp/audit.log", "audit-bucket", "audit.log")
    with engine.begin() as conn:
        conn.execute(text("UPDATE workers SET alive = false WHERE id = :id"), {"id": app.state.worker_id})
