import smtplib
from email.message import EmailMessage

from fastapi import BackgroundTasks, FastAPI

app = FastAPI()


async def send_welcome(address: str) -> None:
    msg = EmailMessage()
    msg["To"] = address
    msg["Subject"] = "Welcome"
    msg.set_content("Thanks for signing up.")
    with smtplib.SMTP("mail.internal", 25) as smtp:
        smtp.send_message(msg)


def send_audit(address: str) -> None:
    with smtplib.SMTP("mail.internal", 25) as smtp:
        smtp.sendmail("noreply@example.com", ["audit@example.com"], f"signup {address}")


@app.post("/signup")
async def signup(email: str, tasks: BackgroundTasks):
    tasks.add_task(send_welcome, email)
    tasks.add_task(send_audit, email)
    return {"ok": True}
