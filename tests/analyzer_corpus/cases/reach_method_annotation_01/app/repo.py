from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Order


class OrderRepo:
    session: Session

    def __init__(self, session: Session) -> None:
        self.session = session

    def totals(self, customer_id: int) -> int:
        stmt = select(func.sum(Order.total)).where(Order.customer_id == customer_id)
        return self.session.execute(stmt).scalar_one() or 0
