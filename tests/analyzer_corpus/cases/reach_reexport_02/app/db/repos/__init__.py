from .users import UserRepo as Users
