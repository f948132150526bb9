from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI()
TEMPLATES = Path(__file__).parent / "templates"


def render(name: str, **values: str) -> str:
    html = (TEMPLATES / f"{name}.html").read_text()
    for key, value in values.items():
        html = html.replace("{{" + key + "}}", value)
    return html


@app.get("/hello/{who}", response_class=HTMLResponse)
async def hello(who: str):
    return render("hello", who=who)
