import smtplib

import boto3


def send_receipt(address: str, order_id: int) -> None:
    with smtplib.SMTP("mail.internal") as smtp:
        smtp.sendmail("shop@example.com", [address], f"Subject: Order {order_id}\n\nThanks!")


class Archiver:
    def __init__(self) -> None:
        self.s3 = boto3.client("s3")

    def archive(self, order_id: int) -> None:
        self.s3.put_object(Bucket="orders", Key=f"{order_id}.json", Body=b"{}")


archiver = Archiver()
