import pytest


@pytest.fixture
def anyio_backend() -> str:
    # The builder drives subprocesses with asyncio directly.
    return "asyncio"
