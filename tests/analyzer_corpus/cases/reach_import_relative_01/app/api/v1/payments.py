from fastapi import APIRouter

from ...services import billing

router = APIRouter()


@router.post("/charge")
async def charge(customer_id: str, cents: int):
    charge_id = billing.charge(customer_id, cents)
    return {"charge": charge_id}
