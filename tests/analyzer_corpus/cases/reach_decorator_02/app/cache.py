import functools
import json

import redis

_r = redis.Redis(host="cache")


def _get(key: str):
    raw = _r.get(key)
    return json.loads(raw) if raw is not None else None


def _put(key: str, value, ttl: int) -> None:
    _r.setex(key, ttl, json.dumps(value))


def cached(ttl: int):
    def decorate(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            key = f"{fn.__name__}:{args}:{sorted(kwargs.items())}"
            hit = _get(key)
            if hit is not None:
                return hit
            value = await fn(*args, **kwargs)
            _put(key, value, ttl)
            return value

        return wrapper

    return decorate
