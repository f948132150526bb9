"""Names of what FastAPI, Starlette, pydantic and SQLAlchemy provide, as the analyzer sees them
after import resolution (see catalog.toml's [alias] for the re-export spellings)."""

from __future__ import annotations

HTTP_VERBS = frozenset({"get", "post", "put", "patch", "delete", "options", "head", "trace"})
APP_TYPES = frozenset(
    {"fastapi.FastAPI", "fastapi.APIRouter", "starlette.Starlette", "starlette.routing.Router"}
)
APP_CONSTRUCTORS = frozenset({"fastapi.FastAPI", "starlette.Starlette", "fastapi.APIRouter"})
BASE_HTTP_MIDDLEWARE = "starlette.middleware.base.BaseHTTPMiddleware"
PYDANTIC_MODELS = frozenset(
    {"pydantic.BaseModel", "pydantic.main.BaseModel", "sqlmodel.SQLModel", "pydantic.RootModel"}
)
PYDANTIC_VALIDATORS = frozenset(
    {
        "pydantic.field_validator",
        "pydantic.model_validator",
        "pydantic.validator",
        "pydantic.root_validator",
        "pydantic.functional_validators.field_validator",
        "pydantic.functional_validators.model_validator",
        "pydantic.class_validators.validator",
        "pydantic.class_validators.root_validator",
        "pydantic.v1.validator",
        "pydantic.v1.root_validator",
    }
)
ANNOTATED_VALIDATORS = frozenset(
    {
        "pydantic.AfterValidator",
        "pydantic.BeforeValidator",
        "pydantic.PlainValidator",
        "pydantic.WrapValidator",
        "pydantic.functional_validators.AfterValidator",
        "pydantic.functional_validators.BeforeValidator",
        "pydantic.functional_validators.PlainValidator",
        "pydantic.functional_validators.WrapValidator",
    }
)
BACKGROUND_TASKS = frozenset({"starlette.background.BackgroundTasks", "fastapi.BackgroundTasks"})
STREAMING_RESPONSES = frozenset(
    {
        "starlette.responses.StreamingResponse",
        "sse_starlette.EventSourceResponse",
        "sse_starlette.sse.EventSourceResponse",
        "fastapi.sse.EventSourceResponse",
    }
)
# Methods that hand a callable to the event loop: it later runs on the loop thread.
LOOP_CALLBACK_METHODS = frozenset(
    {"call_soon", "call_later", "call_at", "call_soon_threadsafe", "add_done_callback"}
)
LOOP_CALLBACK_FUNCTIONS = frozenset({"anyio.from_thread.run", "anyio.from_thread.run_sync"})
TASK_GROUP_METHODS = frozenset({"start_soon", "start"})
STARLETTE_ROUTES = frozenset(
    {
        "starlette.routing.Route",
        "starlette.routing.WebSocketRoute",
        "fastapi.routing.APIRoute",
        "fastapi.routing.APIWebSocketRoute",
    }
)
DEPENDS = frozenset({"fastapi.Depends", "fastapi.Security", "fastapi.params.Depends"})
CONTEXT_MANAGER_DECORATORS = frozenset(
    {"contextlib.contextmanager", "contextlib.asynccontextmanager"}
)
PROPERTY_DECORATORS = frozenset(
    {"property", "functools.cached_property", "cached_property", "abc.abstractproperty"}
)
RELATIONSHIPS = frozenset(
    {"sqlalchemy.orm.relationship", "sqlalchemy.orm.relation", "sqlmodel.Relationship"}
)
# Relationship loading strategies that never issue a SELECT when the attribute is read.
EAGER_LOADING = frozenset(
    {"selectin", "joined", "subquery", "immediate", "raise", "raise_on_sql", "noload"}
)
