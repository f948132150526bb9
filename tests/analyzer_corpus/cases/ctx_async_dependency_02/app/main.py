from collections.abc import AsyncIterator

import psycopg2
from fastapi import Depends, FastAPI
from psycopg2.extensions import connection

DSN = "postgresql://app@db/app"
app = FastAPI()


async def get_conn() -> AsyncIterator[connection]:
    conn = psycopg2.connect(DSN)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


@app.get("/orders/{order_id}")
async def read_order(order_id: int, conn: connection = Depends(get_conn)):
    with conn.cursor() as cur:
        cur.execute("SELECT id, total FROM orders WHERE id = %s", (order_id,))
        row = cur.fetchone()
    return {"id": row[0], "total": row[1]}
