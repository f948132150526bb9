import boto3

s3 = boto3.client("s3")


async def archive_upload(path: str, key: str) -> None:
    s3.upload_file(path, "uploads-archive", key)
