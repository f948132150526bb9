from fastapi import Depends, FastAPI

from app.services import ledger

app = FastAPI()


def current_balance(account: str) -> int:
    return ledger.balance(account)


@app.get("/accounts/{account}")
def account(account: str, bal: int = Depends(current_balance)):
    return {"account": account, "balance": bal}


@app.post("/accounts/{account}/entries")
def post(account: str, amount: int):
    ledger.post_entry(account, amount)
    return {"ok": True}


@app.get("/healthz")
async def healthz():
    return {"ok": True}
