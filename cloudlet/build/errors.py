"""The one exception the builder raises for problems the user can fix."""

from __future__ import annotations


class BuildError(Exception):
    """A build failure the user can act on. `status` is a FastAPI Cloud DeploymentStatus.

    The fields map onto the deployment's `failure` object that `fastapi deploy` prints:
    `error_code`, `error_title`, `error_message`, `error_hint`.
    """

    def __init__(
        self, status: str, error_code: str, title: str, message: str, hint: str = ""
    ) -> None:
        super().__init__(f"{title}: {message}")
        self.status = status
        self.error_code = error_code
        self.title = title
        self.message = message
        self.hint = hint

    def __repr__(self) -> str:
        return f"BuildError(status={self.status!r}, error_code={self.error_code!r})"
