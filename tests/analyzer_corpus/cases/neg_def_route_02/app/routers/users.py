from fastapi import APIRouter, Depends
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import get_db

router = APIRouter(prefix="/users")


@router.get("/")
def list_users(db: Session = Depends(get_db)):
    return [dict(r._mapping) for r in db.execute(text("SELECT id, email FROM users"))]


@router.post("/{user_id}/disable")
def disable(user_id: int, db: Session = Depends(get_db)):
    db.execute(text("UPDATE users SET active = false WHERE id = :id"), {"id": user_id})
    return {"disabled": user_id}
