import csv
import io

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

engine = create_engine("postgresql+psycopg2://app@db/app")


async def rows_as_csv(table: str):
    buf = io.StringIO()
    writer = csv.writer(buf)
    with Session(engine) as session:
        result = session.execute(text(f"SELECT * FROM {table}"))
        for row in result:
            writer.writerow(row)
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
