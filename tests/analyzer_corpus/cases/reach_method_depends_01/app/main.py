import sqlite3

from fastapi import Depends, FastAPI

from app.repo import NoteRepo

app = FastAPI()


def get_repo() -> NoteRepo:
    return NoteRepo(sqlite3.connect("/var/lib/app/notes.db", check_same_thread=False))


@app.get("/notes/{note_id}")
async def note(note_id: int, repo=Depends(get_repo)):
    return {"id": note_id, "body": repo.get(note_id)}
