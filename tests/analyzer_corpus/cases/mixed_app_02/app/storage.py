import boto3
from botocore.config import Config

_s3 = boto3.client("s3", config=Config(retries={"max_attempts": 3}))
BUCKET = "media"


async def stream_object(key: str):
    body = _s3.get_object(Bucket=BUCKET, Key=key)["Body"]
    for chunk in body.iter_chunks(chunk_size=1 << 16):
        yield chunk


def head(key: str) -> int:
    return _s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
