import psycopg2


class BaseRepo:
    dsn = "postgresql://app@db/app"

    def _query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg2.connect(self.dsn) as conn:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()


class InvoiceRepo(BaseRepo):
    def list_open(self, customer: str) -> list[tuple]:
        return self._query("SELECT id, total FROM invoices WHERE customer = %s AND paid = false", customer)
