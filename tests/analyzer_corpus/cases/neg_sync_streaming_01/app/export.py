import csv
import io
import sqlite3


def export_rows(table: str):
    conn = sqlite3.connect("/var/lib/app/app.db")
    try:
        buf = io.StringIO()
        writer = csv.writer(buf)
        for row in conn.execute(f"SELECT * FROM {table}"):
            writer.writerow(row)
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    finally:
        conn.close()
