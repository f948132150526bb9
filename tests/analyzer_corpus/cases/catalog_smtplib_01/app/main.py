import smtplib
from email.message import EmailMessage

from fastapi import FastAPI

app = FastAPI()


@app.post("/contact")
async def contact(sender: str, body: str):
    msg = EmailMessage()
    msg["From"] = "web@example.com"
    msg["To"] = "support@example.com"
    msg["Reply-To"] = sender
    msg["Subject"] = "Contact form"
    msg.set_content(body)
    with smtplib.SMTP_SSL("smtp.example.com", 465) as smtp:
        smtp.login("web@example.com", "app-password")
        smtp.send_message(msg)
    return {"sent": True}
