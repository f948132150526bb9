import psycopg2
import psycopg2.extras
from fastapi import FastAPI

app = FastAPI()
DSN = "dbname=app user=app host=db"


@app.post("/events")
async def record_event(kind: str):
    conn = psycopg2.connect(DSN)
    cur = conn.cursor()
    cur.execute("INSERT INTO events(kind) VALUES (%s)", (kind,))
    conn.commit()
    conn.close()
    return {"ok": True}


@app.get("/events")
async def list_events(limit: int = 50):
    with psycopg2.connect(DSN) as conn:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT id, kind FROM events ORDER BY id DESC LIMIT %s", (limit,))
            return cur.fetchall()
