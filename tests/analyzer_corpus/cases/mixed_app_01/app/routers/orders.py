from fastapi import APIRouter, BackgroundTasks, Depends
from fastapi.concurrency import run_in_threadpool

from app.db import SessionLocal
from app.deps import current_customer
from app.repositories.orders import OrderRepository
from app.services.payments import gateway
from app.tasks import email_confirmation, email_receipt

router = APIRouter(prefix="/orders")


@router.post("/")
async def place_order(total: int, tasks: BackgroundTasks, customer: str = Depends(current_customer)):
    auth_id = gateway.authorize(customer, total)
    with SessionLocal() as session:
        order_id = OrderRepository(session).create(customer, total)
    tasks.add_task(email_confirmation, customer, order_id)
    tasks.add_task(email_receipt, customer, order_id)
    return {"id": order_id, "authorization": auth_id}


@router.get("/mine")
def my_orders(customer: str = Depends(current_customer)):
    with SessionLocal() as session:
        return OrderRepository(session).for_customer(customer)


@router.post("/{order_id}/refund")
async def refund(order_id: int, customer: str = Depends(current_customer)):
    auth_id = await run_in_threadpool(gateway.authorize, customer, -1)
    return {"refund": auth_id, "order": order_id}
