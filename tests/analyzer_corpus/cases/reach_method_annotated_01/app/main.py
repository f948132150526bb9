from typing import Annotated

from fastapi import Depends, FastAPI

from app.store import CartStore

app = FastAPI()
_store = CartStore("redis://cache:6379/0")


def get_store():
    return _store


CartDep = Annotated[CartStore, Depends(get_store)]


@app.post("/carts/{cart_id}/items")
async def add_item(cart_id: str, sku: str, store: CartDep):
    items = store.load(cart_id)
    items.append({"sku": sku, "qty": 1})
    store.save(cart_id, items)
    return items
