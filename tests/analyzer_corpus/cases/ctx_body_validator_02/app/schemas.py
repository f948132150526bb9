import bcrypt
from pydantic import BaseModel, model_validator


class NewUser(BaseModel):
    email: str
    password: str
    password_hash: str = ""

    @model_validator(mode="after")
    def hash_password(self) -> "NewUser":
        self.password_hash = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt()).decode()
        return self
