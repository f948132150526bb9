"""Which functions FastAPI / Starlette run on the event loop, and why.

Exactly the semantics checked at run time on FastAPI 0.165 / Starlette 1.10: async routes and
dependencies (also async generators and instances with `async def __call__`), websocket
handlers, `@app.middleware`, `BaseHTTPMiddleware.dispatch`, pure ASGI middleware, lifespan,
`on_event` handlers even when they are plain `def` (unless the app has a lifespan), async
exception handlers, async background tasks, async generators streamed by `StreamingResponse`,
pydantic validators of request models (also for `def` routes), `def` routes wrapped by an
`async def` decorator, and callbacks handed to the loop. Plain `def` routes and dependencies,
sync background tasks and sync exception handlers run in the threadpool and are not entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cloudlet.analyze.facts import (
    Annotation,
    Attr,
    Call,
    Const,
    DictOf,
    Expr,
    FunctionFacts,
    Name,
    Seq,
    Subscript,
)
from cloudlet.analyze.frameworks import (
    ANNOTATED_VALIDATORS,
    APP_CONSTRUCTORS,
    APP_TYPES,
    BACKGROUND_TASKS,
    BASE_HTTP_MIDDLEWARE,
    HTTP_VERBS,
    LOOP_CALLBACK_FUNCTIONS,
    LOOP_CALLBACK_METHODS,
    PYDANTIC_MODELS,
    STARLETTE_ROUTES,
    STREAMING_RESPONSES,
    TASK_GROUP_METHODS,
)
from cloudlet.analyze.infer import CLASS, EXT, FUNC, GEN, INST, Inference, Values

# Syntactic pre-filter: only calls spelled with one of these names can register anything.
REGISTRATION_NAMES = frozenset(
    {
        "add_api_route",
        "add_route",
        "add_api_websocket_route",
        "add_websocket_route",
        "add_middleware",
        "add_exception_handler",
        "add_event_handler",
        "add_task",
        "FastAPI",
        "Starlette",
        "APIRouter",
        "Route",
        "APIRoute",
        "WebSocketRoute",
        "APIWebSocketRoute",
        "Middleware",
        "BackgroundTask",
        "StreamingResponse",
        "EventSourceResponse",
        "Depends",
        "Security",
        "run",
        "run_sync",
        *LOOP_CALLBACK_METHODS,
        *TASK_GROUP_METHODS,
    }
)


@dataclass
class EntryPoint:
    function: str
    reason: str  # why it runs on the loop: "async route", "async dependency", ...
    label: str  # what a developer calls it: "GET /items", "middleware add_header"
    severity: str = "normal"  # "low": runs once at startup or shutdown
    users: list[str] = field(default_factory=list)  # routes that use a dependency


def _call_name(call: Call) -> str:
    func = call.func
    if isinstance(func, Attr):
        return func.attr
    if isinstance(func, Name):
        return func.id
    return ""


def _kw(call: Call, name: str) -> Expr | None:
    for key, value in call.kwargs:
        if key == name:
            return value
    return None


def _arg(call: Call, index: int, name: str) -> Expr | None:
    if len(call.args) > index:
        return call.args[index]
    return _kw(call, name)


def _items(expr: Expr | None) -> tuple[Expr, ...]:
    if isinstance(expr, Seq):
        return expr.items
    return () if expr is None else (expr,)


class EntryPointFinder:
    def __init__(self, infer: Inference) -> None:
        self.infer = infer
        self.project = infer.project
        self.entries: dict[str, EntryPoint] = {}
        self.endpoints: list[tuple[str, str]] = []  # (function, label) of every route, def or not
        self.dependencies: list[FunctionFacts] = []  # every dependency callable, def or not
        self.response_models: list[str] = []  # response models of async routes
        self.lifespan_apps = False

    # -- recording --

    def add(self, function: str, reason: str, label: str, severity: str = "normal") -> None:
        if function not in self.project.functions:
            return
        existing = self.entries.get(function)
        if existing is None:
            self.entries[function] = EntryPoint(function, reason, label, severity)
        elif existing.severity == "low" and severity == "normal":
            self.entries[function] = EntryPoint(function, reason, label, severity, existing.users)

    def short(self, qualname: str) -> str:
        return qualname.rpartition(".")[2] if qualname in self.project.functions else qualname

    # -- helpers --

    def is_app(self, values: Values) -> bool:
        """An app or router: FastAPI's and Starlette's, a project subclass, or a router class
        of a FastAPI extension library (`fastapi_utils.inferring_router.InferringRouter`)."""
        for v in values:
            if v.kind != INST:
                continue
            if v.name in APP_TYPES:
                return True
            if v.name in self.project.classes:
                bases = self.infer.library_bases(v.name)
                if set(bases) & APP_TYPES or any(_fastapi_router_type(b) for b in bases):
                    return True
            elif _fastapi_router_type(v.name):
                return True
        return False

    def functions_in(self, expr: Expr | None, scope: FunctionFacts) -> list[str]:
        if expr is None:
            return []
        return [v.name for v in self.infer.eval(expr, scope) if v.kind == FUNC]

    def values_in(self, expr: Expr | None, scope: FunctionFacts) -> Values:
        if expr is None:
            return frozenset()
        return self.infer.eval(expr, scope)

    def is_model(self, class_qualname: str) -> bool:
        return bool(set(self.infer.library_bases(class_qualname)) & PYDANTIC_MODELS)

    # -- the scan --

    def find(self) -> dict[str, EntryPoint]:
        functions = self.project.functions
        self.lifespan_apps = any(
            self._is_app_call(c.call, fn, with_lifespan=True)
            for fn in functions.values()
            for c in fn.calls
            if _call_name(c.call) in {"FastAPI", "Starlette"}
        )
        for fn in list(functions.values()):
            if fn.decorators:
                self._decorated(fn)
            for param in fn.params:
                dependency = self.infer.find_depends(param.annotation, fn)
                if dependency is not None:
                    self._dependency(dependency, fn)
        for fn in list(functions.values()):
            for call_fact in fn.calls:
                if _call_name(call_fact.call) in REGISTRATION_NAMES:
                    self._registration(call_fact.call, fn)
        self._middleware_classes()
        self._request_models()
        self._dependency_users()
        return self.entries

    def _dependency_users(self) -> None:
        """Name the routes behind each dependency entry (for grouping the report by route)."""
        for endpoint, label in self.endpoints:
            seen: set[str] = set()
            stack = [self.project.functions[endpoint]]
            while stack:
                fn = stack.pop()
                for param in fn.params:
                    target = self.infer.dependency_of(param, fn)
                    if target is None:
                        continue
                    for value in self.infer.eval(target, fn):
                        name = value.name
                        if value.kind == INST:
                            name = self.infer.method(value.name, "__call__") or ""
                        if name in seen or name not in self.project.functions:
                            continue
                        seen.add(name)
                        entry = self.entries.get(name)
                        if entry is not None and label not in entry.users:
                            entry.users.append(label)
                        stack.append(self.project.functions[name])

    def _is_app_call(self, call: Call, scope: FunctionFacts, with_lifespan: bool) -> bool:
        names = {v.name for v in self.infer.eval(call.func, scope)}
        if not names & APP_CONSTRUCTORS:
            return False
        return not with_lifespan or _kw(call, "lifespan") is not None

    # -- decorators: @app.get, @app.middleware, @app.on_event, @app.exception_handler ... --

    def _decorated(self, fn: FunctionFacts) -> None:
        scope = self.infer.module_scope(fn)
        for decorator in fn.decorators:
            if not isinstance(decorator, Call) or not isinstance(decorator.func, Attr):
                continue
            verb = decorator.func.attr
            if verb not in HTTP_VERBS and verb not in {
                "api_route",
                "route",
                "websocket",
                "websocket_route",
                "middleware",
                "on_event",
                "exception_handler",
            }:
                continue
            base = self.infer.eval(decorator.func.value, scope)
            path = _arg(decorator, 0, "path")
            looks_like_route = isinstance(path, Const) and str(path.value).startswith("/")
            if not self.is_app(base) and not (not base and looks_like_route):
                continue
            if verb in HTTP_VERBS or verb in {"api_route", "route"}:
                self._route(fn, self._route_label(verb, decorator, scope), decorator, scope)
            elif verb in {"websocket", "websocket_route"}:
                self.add(fn.qualname, "websocket handler", f"WEBSOCKET {_const(path)}")
                self.endpoints.append((fn.qualname, f"WEBSOCKET {_const(path)}"))
                self._route_extras(fn, decorator, scope)
            elif verb == "middleware":
                self.add(fn.qualname, "http middleware", f"middleware {fn.name}")
            elif verb == "on_event":
                event = _const(_arg(decorator, 0, "event_type"))
                self._event_handler(fn.qualname, event, decorator.func.value, scope)
            elif verb == "exception_handler" and fn.is_async:
                self.add(fn.qualname, "async exception handler", f"exception handler {fn.name}")

    def _route_label(self, verb: str, decorator: Call, scope: FunctionFacts) -> str:
        path = _const(_arg(decorator, 0, "path"))
        prefix = ""
        base = decorator.func.value if isinstance(decorator.func, Attr) else None
        if isinstance(base, Name):
            for expr, _ in self.infer.raw_bindings(base.id, scope):
                if isinstance(expr, Call):
                    found = _kw(expr, "prefix")
                    if isinstance(found, Const) and isinstance(found.value, str):
                        prefix = found.value
        if verb in {"api_route", "route"}:
            methods = _kw(decorator, "methods")
            names = [str(m.value) for m in _items(methods) if isinstance(m, Const)]
            verb = ",".join(n.upper() for n in names) or "GET"
        return f"{verb.upper()} {prefix}{path}"

    def _route(
        self, fn: FunctionFacts, label: str, registration: Call | None, scope: FunctionFacts
    ) -> None:
        self.endpoints.append((fn.qualname, label))
        wrapper = self._async_wrapper(fn)
        if wrapper is not None:
            # FastAPI registers (and awaits) the decorator's async wrapper; a def route runs
            # on the loop too when the wrapper calls it directly.
            wrapper_fn, decorator, calls_route = wrapper
            self.add(wrapper_fn, f"async decorator `{decorator}` wrapping the route", label)
            if not fn.is_async and calls_route:
                self.add(
                    fn.qualname, f"def route wrapped by the async decorator `{decorator}`", label
                )
        if fn.is_async:
            self.add(fn.qualname, "async route", label)
        if fn.is_async or wrapper is not None:
            declared = _kw(registration, "response_model") if registration is not None else None
            if declared is not None:
                models = self._models_in(self.infer.instances_of(declared, scope))
            elif fn.returns_annotation is not None:
                models = self._models_in(self.infer.instances_of(fn.returns_annotation, fn))
            else:
                models = []
            self.response_models.extend(models)
        if registration is not None:
            self._route_extras(fn, registration, scope)

    def _route_extras(self, fn: FunctionFacts, registration: Call, scope: FunctionFacts) -> None:
        for dependency in _items(_kw(registration, "dependencies")):
            if isinstance(dependency, Call) and self.infer.is_depends(dependency, scope):
                target = _arg(dependency, 0, "dependency")
                if target is not None:
                    self._dependency(target, scope)

    def _async_wrapper(self, fn: FunctionFacts) -> tuple[str, str, bool] | None:
        """The `async def` wrapper a project decorator registers in fn's place: its name, the
        decorator's, and whether the wrapper calls fn itself (on the loop, then)."""
        scope = self.infer.module_scope(fn)
        for decorator in fn.decorators:
            for value in self.infer.eval(decorator, scope):
                if value.kind != FUNC:
                    continue
                deco = self.project.functions[value.name]
                wrapper = self.infer.wrapper_of(deco)
                if wrapper is not None and self.project.functions[wrapper[0]].is_async:
                    return wrapper[0], deco.name, wrapper[1]
        return None

    def _event_handler(
        self, function: str, event: str, app: Expr | None, scope: FunctionFacts
    ) -> None:
        if app is not None and self._app_has_lifespan(app, scope):
            return  # With `lifespan=`, Starlette never runs on_event handlers.
        reason = "shutdown handler" if event == "shutdown" else "startup handler"
        self.add(function, reason, f"{event} handler {self.short(function)}", "low")

    def _app_has_lifespan(self, app: Expr, scope: FunctionFacts) -> bool:
        """Whether the app this handler is registered on was built with `lifespan=`.

        Follows the name to the `FastAPI(...)` call that built it; for a router (its handlers
        end up in whichever app includes it) or anything not traced, any app of the project
        built with a lifespan counts.
        """
        if isinstance(app, Attr) and app.attr == "router":
            app = app.value
        if isinstance(app, Name):
            bindings = [(b, scope) for b in scope.names.get(app.id, ())]
            bindings += self.infer.raw_bindings(app.id, scope)
            for binding, where in bindings:
                if (
                    isinstance(binding, Call)
                    and _call_name(binding) in {"FastAPI", "Starlette"}
                    and self._is_app_call(binding, where, with_lifespan=False)
                ):
                    return _kw(binding, "lifespan") is not None
        return self.lifespan_apps

    # -- dependencies --

    def _dependency(self, target: Expr, scope: FunctionFacts) -> None:
        for value in self.infer.eval(target, scope):
            if value.kind == FUNC:
                fn = self.project.functions[value.name]
                if fn.is_async:
                    self.add(fn.qualname, "async dependency", f"dependency {fn.name}")
                self._request_params(fn)
            elif value.kind == INST and value.name in self.project.classes:
                call = self.infer.method(value.name, "__call__")
                if call is not None and self.project.functions[call].is_async:
                    self.add(
                        call, "async dependency", f"dependency {value.name.rpartition('.')[2]}"
                    )
                if call is not None:
                    self._request_params(self.project.functions[call])
            elif value.kind == CLASS:
                init = self.infer.method(value.name, "__init__")
                if init is not None:
                    self._request_params(self.project.functions[init])

    # -- calls that register things --

    def _registration(self, call: Call, scope: FunctionFacts) -> None:
        name = _call_name(call)
        if name in {"Depends", "Security"}:
            if self.infer.is_depends(call, scope):
                target = _arg(call, 0, "dependency")
                if target is not None:
                    self._dependency(target, scope)
            return
        callee = self.infer.eval(call.func, scope)
        ext = {v.name for v in callee if v.kind == EXT}
        if isinstance(call.func, Attr) and name not in {"FastAPI", "Starlette", "APIRouter"}:
            base = self.infer.eval(call.func.value, scope)
        else:
            base = frozenset()
        if name in {"FastAPI", "Starlette", "APIRouter"} and ext & APP_CONSTRUCTORS:
            self._app_constructor(call, scope)
        elif name in {"add_api_route", "add_route"} and self.is_app(base):
            path = _const(_arg(call, 0, "path"))
            for fn in self.functions_in(_arg(call, 1, "endpoint"), scope):
                verbs = [str(m.value) for m in _items(_kw(call, "methods")) if isinstance(m, Const)]
                label = f"{','.join(v.upper() for v in verbs) or 'GET'} {path}"
                self._route(self.project.functions[fn], label, call, scope)
        elif name in {"add_api_websocket_route", "add_websocket_route"} and self.is_app(base):
            for fn in self.functions_in(_arg(call, 1, "endpoint"), scope):
                label = f"WEBSOCKET {_const(_arg(call, 0, 'path'))}"
                self.endpoints.append((fn, label))
                self.add(fn, "websocket handler", label)
        elif name == "add_middleware" and self.is_app(base):
            self._middleware_class(_arg(call, 0, "middleware_class"), scope)
        elif name == "Middleware" and ext & {"starlette.middleware.Middleware"}:
            self._middleware_class(_arg(call, 0, "cls"), scope)
        elif name == "add_exception_handler" and self.is_app(base):
            for fn in self.functions_in(_arg(call, 1, "handler"), scope):
                if self.project.functions[fn].is_async:
                    self.add(fn, "async exception handler", f"exception handler {self.short(fn)}")
        elif name == "add_event_handler" and self.is_app(base):
            event = _const(_arg(call, 0, "event_type"))
            app = call.func.value if isinstance(call.func, Attr) else None
            for fn in self.functions_in(_arg(call, 1, "func"), scope):
                self._event_handler(fn, event, app, scope)
        elif (
            name == "add_task"
            and (not base or any(v.name in BACKGROUND_TASKS for v in base if v.kind == INST))
        ) or (name == "BackgroundTask" and ext & {"starlette.background.BackgroundTask"}):
            self._background(_arg(call, 0, "func"), scope)
        elif name in {"StreamingResponse", "EventSourceResponse"} and ext & STREAMING_RESPONSES:
            for value in self.values_in(_arg(call, 0, "content"), scope):
                if value.kind == GEN and self.project.functions[value.name].is_async:
                    label = f"stream {self.short(value.name)}"
                    self.add(value.name, "async generator streamed by StreamingResponse", label)
        elif name in {"Route", "APIRoute", "WebSocketRoute", "APIWebSocketRoute"} and (
            ext & STARLETTE_ROUTES
        ):
            self._starlette_route(call, scope, websocket="WebSocket" in name)
        elif name in LOOP_CALLBACK_METHODS or (
            name in {"run", "run_sync"} and ext & LOOP_CALLBACK_FUNCTIONS
        ):
            index = 1 if name in {"call_later", "call_at"} else 0
            for fn in self.functions_in(_arg(call, index, "callback"), scope):
                self.add(fn, "callback run by the event loop", f"loop callback {self.short(fn)}")
        elif name in TASK_GROUP_METHODS and isinstance(call.func, Attr):
            for fn in self.functions_in(_arg(call, 0, "func"), scope):
                if self.project.functions[fn].is_async:
                    self.add(fn, "task started on the event loop", f"task {self.short(fn)}")

    def _app_constructor(self, call: Call, scope: FunctionFacts) -> None:
        for fn in self.functions_in(_kw(call, "lifespan"), scope):
            self.add(fn, "lifespan", f"lifespan {self.short(fn)}", "low")
        if _kw(call, "lifespan") is None:
            for event in ("on_startup", "on_shutdown"):
                for item in _items(_kw(call, event)):
                    for fn in self.functions_in(item, scope):
                        self._event_handler(fn, event[3:], None, scope)
        for item in _items(_kw(call, "middleware")):
            if isinstance(item, Call) and _call_name(item) == "Middleware":
                self._middleware_class(_arg(item, 0, "cls"), scope)
        handlers = _kw(call, "exception_handlers")
        if isinstance(handlers, DictOf):
            for value in handlers.values:
                for fn in self.functions_in(value, scope):
                    if self.project.functions[fn].is_async:
                        self.add(
                            fn, "async exception handler", f"exception handler {self.short(fn)}"
                        )
        for item in _items(_kw(call, "routes")):
            if isinstance(item, Call) and _call_name(item) in {"Route", "WebSocketRoute"}:
                self._starlette_route(item, scope, websocket=_call_name(item) == "WebSocketRoute")

    def _starlette_route(self, call: Call, scope: FunctionFacts, websocket: bool) -> None:
        path = _const(_arg(call, 0, "path"))
        for value in self.values_in(_arg(call, 1, "endpoint"), scope):
            if value.kind == FUNC:
                fn = self.project.functions[value.name]
                if websocket:
                    self.add(fn.qualname, "websocket handler", f"WEBSOCKET {path}")
                else:
                    verbs = [
                        str(m.value) for m in _items(_kw(call, "methods")) if isinstance(m, Const)
                    ]
                    self._route(
                        fn, f"{','.join(v.upper() for v in verbs) or 'GET'} {path}", None, scope
                    )
            elif value.kind == CLASS:
                # HTTPEndpoint / WebSocketEndpoint subclasses: their async methods run on the loop.
                for owner in self.infer.mro(value.name):
                    for method_name, qualname in self.project.classes[owner].methods.items():
                        method = self.project.functions[qualname]
                        if method.is_async and (
                            method_name in HTTP_VERBS or method_name.startswith("on_")
                        ):
                            self.add(qualname, "async route", f"{method_name.upper()} {path}")

    def _background(self, target: Expr | None, scope: FunctionFacts) -> None:
        for value in self.values_in(target, scope):
            if value.kind == FUNC and self.project.functions[value.name].is_async:
                label = f"background task {self.short(value.name)}"
                self.add(value.name, "async background task", label)
            elif value.kind == INST and value.name in self.project.classes:
                call = self.infer.method(value.name, "__call__")
                if call is not None and self.project.functions[call].is_async:
                    self.add(call, "async background task", f"background task {self.short(call)}")

    # -- middleware classes --

    def _middleware_class(self, target: Expr | None, scope: FunctionFacts) -> None:
        for value in self.values_in(target, scope):
            if value.kind == CLASS:
                self._middleware_methods(value.name)

    def _middleware_methods(self, qualname: str) -> None:
        label = f"middleware {qualname.rpartition('.')[2]}"
        dispatch = self.infer.method(qualname, "dispatch")
        if dispatch is not None and BASE_HTTP_MIDDLEWARE in self.infer.library_bases(qualname):
            self.add(dispatch, "BaseHTTPMiddleware.dispatch", label)
        call = self.infer.method(qualname, "__call__")
        if call is not None and self.project.functions[call].is_async:
            self.add(call, "ASGI middleware", label)

    def _middleware_classes(self) -> None:
        """Middleware classes are recognised by shape too: a registration may be out of reach."""
        for qualname, cls in self.project.classes.items():
            if BASE_HTTP_MIDDLEWARE in self.infer.library_bases(qualname):
                self._middleware_methods(qualname)
                continue
            call = cls.methods.get("__call__")
            if call is None:
                continue
            fn = self.project.functions[call]
            names = [p.name for p in fn.params]
            if fn.is_async and names[1:4] == ["scope", "receive", "send"]:
                self.add(call, "ASGI middleware", f"middleware {cls.name}")

    # -- request models: their validators run on the loop, even for `def` routes --

    def _request_params(self, fn: FunctionFacts) -> None:
        self.dependencies.append(fn)

    def _request_models(self) -> None:
        functions = [self.project.functions[f] for f, _ in self.endpoints]
        functions.extend(self.dependencies)
        models: list[str] = []
        for fn in functions:
            for param in fn.params:
                if param.annotation is None or self.infer.dependency_of(param, fn) is not None:
                    continue
                models.extend(self._models_in(self.infer.instances_of(param.annotation, fn)))
        self._validators(models, "validator of a request model")
        # Async routes validate their response on the loop too (def routes in the threadpool).
        self._validators(self.response_models, "validator of an async route's response model")

    def _models_in(self, values: Values) -> list[str]:
        names = [v.arg if v.name == "list" else v.name for v in values if v.kind == INST]
        return [n for n in names if n in self.project.classes and self.is_model(n)]

    def _validators(self, models: list[str], reason: str) -> None:
        """The validators of these models and of the models their fields nest."""
        seen: set[str] = set()
        queue = list(models)
        while queue:
            model = queue.pop()
            if model in seen or not self.is_model(model):
                continue
            seen.add(model)
            for owner in self.infer.mro(model):
                cls = self.project.classes[owner]
                for qualname in cls.methods.values():
                    if self.infer.is_validator(self.project.functions[qualname]):
                        self.add(qualname, reason, f"model {cls.name}")
                scope = self.infer.class_scope(cls)
                for exprs in cls.attrs.values():
                    for expr in exprs:
                        self._field_validators(expr, scope, cls.name, reason)
                        queue.extend(self._models_in(self.infer.eval(expr, scope)))

    def _field_validators(self, expr: Expr, scope: FunctionFacts, model: str, reason: str) -> None:
        """`Annotated[str, AfterValidator(check)]`: check runs while the body is validated."""
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, Subscript):
                stack.append(node.key)
            elif isinstance(node, Seq):
                stack.extend(node.items)
            elif isinstance(node, Call):
                names = {v.name for v in self.infer.eval(node.func, scope)}
                if names & ANNOTATED_VALIDATORS and node.args:
                    for fn in self.functions_in(node.args[0], scope):
                        self.add(fn, reason, f"model {model}")
            elif isinstance(node, Annotation):
                stack.append(node.type)


def _fastapi_router_type(name: str) -> bool:
    package = name.partition(".")[0]
    last = name.rpartition(".")[2]
    return package.startswith(("fastapi", "starlette")) and last.endswith(("Router", "FastAPI"))


def _const(expr: Expr | None) -> str:
    if isinstance(expr, Const) and expr.value is not None:
        return str(expr.value)
    return "?"


def find_entry_points(infer: Inference) -> dict[str, EntryPoint]:
    """Every function the event loop runs, by qualified name, with why it does."""
    return EntryPointFinder(infer).find()
