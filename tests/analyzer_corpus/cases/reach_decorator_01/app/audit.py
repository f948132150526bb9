import functools
import json
import time


def audited(fn):
    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        with open("/var/log/app/audit.jsonl", "a") as log:
            log.write(json.dumps({"op": fn.__name__, "at": time.time()}) + "\n")
        return await fn(*args, **kwargs)

    return wrapper
