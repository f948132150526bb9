from app.repo import ProfileRepo


class ProfileService:
    def __init__(self) -> None:
        self.repo = ProfileRepo()

    def profile(self, user_id: str) -> dict:
        doc = self.repo.find(user_id)
        return doc or {"user_id": user_id}
