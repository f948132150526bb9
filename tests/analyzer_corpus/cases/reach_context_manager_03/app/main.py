import smtplib

import requests
from fastapi import FastAPI

app = FastAPI()


@app.post("/invite")
async def invite(email: str):
    with requests.Session() as s:
        s.headers["Authorization"] = "Bearer token"
        s.post("https://crm.internal/contacts", json={"email": email}, timeout=5)
    with smtplib.SMTP("mail.internal") as smtp:
        smtp.sendmail("noreply@example.com", [email], "Subject: Invite\n\nJoin us")
    return {"invited": email}
