from sqlalchemy import text
from sqlalchemy.orm import Session


class OrderRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, customer: str, total: int) -> int:
        row = self.session.execute(
            text("INSERT INTO orders(customer, total) VALUES (:c, :t) RETURNING id"), {"c": customer, "t": total}
        ).one()
        self.session.commit()
        return row[0]

    def for_customer(self, customer: str) -> list[dict]:
        rows = self.session.execute(text("SELECT id, total FROM orders WHERE customer = :c"), {"c": customer})
        return [dict(r._mapping) for r in rows]
