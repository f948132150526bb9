import functools
from collections.abc import Callable
from typing import Any

DISABLED: set[str] = set()


def require_feature(flag: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if flag in DISABLED:
                return {"detail": "disabled"}
            return fn(*args, **kwargs)

        return wrapper

    return decorate
