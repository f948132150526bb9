from pymongo import MongoClient


class SessionStore:
    def __init__(self, url: str) -> None:
        self.coll = MongoClient(url)["app"]["sessions"]

    def load(self, sid: str) -> dict | None:
        return self.coll.find_one({"_id": sid})
