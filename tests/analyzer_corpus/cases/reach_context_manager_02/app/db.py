from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
from psycopg2.extensions import connection

DSN = "postgresql://app@db/app"


@contextmanager
def db_session() -> Iterator[connection]:
    conn = psycopg2.connect(DSN)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()
