import smtplib


class Notifier:
    def __init__(self, host: str) -> None:
        self.host = host

    async def notify_all(self, addresses: list[str], text: str) -> None:
        with smtplib.SMTP(self.host) as smtp:
            for address in addresses:
                smtp.sendmail("noreply@example.com", [address], text)


notifier = Notifier("mail.internal")
