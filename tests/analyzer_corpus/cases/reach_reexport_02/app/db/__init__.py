from .repos import Users

__all__ = ["Users"]
