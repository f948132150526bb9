import psycopg2

DSN = "dbname=ledger"


def balance(account: str) -> int:
    with psycopg2.connect(DSN) as conn, conn.cursor() as cur:
        cur.execute("SELECT sum(amount) FROM entries WHERE account = %s", (account,))
        return cur.fetchone()[0] or 0


def post_entry(account: str, amount: int) -> None:
    with psycopg2.connect(DSN) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO entries(account, amount) VALUES (%s, %s)", (account, amount))
