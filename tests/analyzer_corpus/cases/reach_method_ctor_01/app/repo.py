from pymongo import MongoClient

client = MongoClient("mongodb://db:27017")


class ProfileRepo:
    def __init__(self) -> None:
        self.coll = client["app"]["profiles"]

    def find(self, user_id: str) -> dict | None:
        return self.coll.find_one({"user_id": user_id}, {"_id": 0})
