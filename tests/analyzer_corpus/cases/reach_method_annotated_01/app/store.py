import json

import redis


class CartStore:
    def __init__(self, url: str) -> None:
        self.r = redis.Redis.from_url(url)

    def load(self, cart_id: str) -> list[dict]:
        raw = self.r.get(f"cart:{cart_id}")
        return json.loads(raw) if raw else []

    def save(self, cart_id: str, items: list[dict]) -> None:
        self.r.set(f"cart:{cart_id}", json.dumps(items), ex=3600)
