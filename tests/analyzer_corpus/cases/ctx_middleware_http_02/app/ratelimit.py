import redis

r = redis.Redis(host="cache", port=6379)


def hit(key: str, limit: int) -> bool:
    count = r.incr(key)
    if count == 1:
        r.expire(key, 60)
    return count <= limit
