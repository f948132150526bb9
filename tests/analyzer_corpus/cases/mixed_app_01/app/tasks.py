import smtplib


async def email_confirmation(customer: str, order_id: int) -> None:
    with smtplib.SMTP("mail.internal") as smtp:
        smtp.sendmail("shop@example.com", [customer], f"Subject: order {order_id}\n\nconfirmed")


def email_receipt(customer: str, order_id: int) -> None:
    with smtplib.SMTP("mail.internal") as smtp:
        smtp.sendmail("shop@example.com", [customer], f"Subject: receipt {order_id}\n\nthanks")
