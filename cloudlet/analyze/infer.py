"""What an expression can be at run time, as far as simple, flow-insensitive inference tells.

Values are project functions, classes and modules, instances (of project classes or of library
types the catalog knows), library symbols by dotted name, and generator / context-manager objects
made by project functions. Locals are the union of everything assigned to them; parameters take
their annotation, or the dependency FastAPI injects (`Depends(get_db)` yields get_db's value).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from cloudlet.analyze.catalog import Catalog
from cloudlet.analyze.facts import (
    Annotation,
    Attr,
    Await,
    BinOp,
    Call,
    ClassFacts,
    ClassRef,
    Const,
    Either,
    EnterOf,
    Expr,
    FuncRef,
    FunctionFacts,
    ImportRef,
    IterOf,
    ModuleFacts,
    Name,
    Param,
    Scoped,
    Seq,
    Starred,
    Subscript,
)
from cloudlet.analyze.frameworks import (
    CONTEXT_MANAGER_DECORATORS,
    DEPENDS,
    PROPERTY_DECORATORS,
    PYDANTIC_VALIDATORS,
)
from cloudlet.analyze.modules import Project

MODULE, FUNC, CLASS, INST, EXT, GEN, CM = "module", "func", "class", "inst", "ext", "gen", "cm"
BUILTINS = frozenset(dir(builtins))
MAX_VALUES = 12
MAX_CALL_SITES = 40

# Wrappers whose first type argument is the value's type.
TRANSPARENT_GENERICS = frozenset(
    {
        "typing.Optional",
        "typing.Annotated",
        "typing_extensions.Annotated",
        "typing.Final",
        "typing.ClassVar",
        "sqlalchemy.orm.Mapped",
        "typing.Union",
    }
)
SEQUENCE_GENERICS = frozenset(
    {
        "list",
        "set",
        "tuple",
        "frozenset",
        "typing.List",
        "typing.Set",
        "typing.Sequence",
        "typing.Iterable",
        "typing.Iterator",
        "collections.abc.Sequence",
        "collections.abc.Iterable",
        "collections.abc.Iterator",
        "typing.AsyncIterator",
        "typing.AsyncGenerator",
        "typing.Generator",
        "collections.abc.AsyncIterator",
        "collections.abc.AsyncGenerator",
        "collections.abc.Generator",
    }
)


class Value(NamedTuple):
    kind: str
    name: str
    arg: str = ""  # a carried class: Query[User] is Value(INST, "sqlalchemy.orm.Query", "app.User")
    origin: str = ""  # ORM: an instance loaded through a sync Session (its relationships lazy-load)


Values = frozenset[Value]
NOTHING: Values = frozenset()


def _cap(values: Iterable[Value]) -> Values:
    out = frozenset(values)
    if len(out) > MAX_VALUES:
        out = frozenset(sorted(out)[:MAX_VALUES])
    return out


class Inference:
    def __init__(self, project: Project, catalog: Catalog) -> None:
        self.project = project
        self.catalog = catalog
        self._names: dict[tuple[str, str], Values] = {}
        self._returns: dict[str, Values] = {}
        self._class_attrs: dict[tuple[str, str], Values] = {}
        self._imports: dict[tuple[str, str], Values] = {}
        self._mro: dict[str, tuple[str, ...]] = {}
        self._ext_bases: dict[str, tuple[str, ...]] = {}
        self._busy: set[object] = set()
        self._callers: dict[str, list[tuple[Call, FunctionFacts]]] | None = None

    # -- scopes --

    def module_of(self, qualname: str) -> ModuleFacts:
        return self.project.module_of[qualname]

    def function(self, qualname: str) -> FunctionFacts:
        return self.project.functions[qualname]

    # -- expressions --

    def eval(self, expr: Expr, scope: FunctionFacts) -> Values:
        if isinstance(expr, Name):
            return self.lookup(expr.id, scope)
        if isinstance(expr, Attr):
            found = self.attribute(self.eval(expr.value, scope), expr.attr)
            if isinstance(expr.value, Attr) and expr.value.attr == "state":
                found = _cap(found | self.state_attribute(expr.attr))
            return found
        if isinstance(expr, Call):
            return self.call_result(expr, scope)
        if isinstance(expr, Await):
            return self.eval(expr.value, scope)
        if isinstance(expr, FuncRef):
            return frozenset({Value(FUNC, expr.qualname)})
        if isinstance(expr, ClassRef):
            return frozenset({Value(CLASS, expr.qualname)})
        if isinstance(expr, ImportRef):
            return self.resolve_import(expr.target, self.module_of(scope.qualname))
        if isinstance(expr, Subscript):
            return self.subscript(self.eval(expr.value, scope))
        if isinstance(expr, BinOp):
            if expr.op == "/":
                left = self.eval(expr.left, scope)
                if any(v.kind == INST and v.name == "pathlib.Path" for v in left):
                    return frozenset({Value(INST, "pathlib.Path")})
            return NOTHING
        if isinstance(expr, IterOf):
            return self.iterated(self.eval(expr.value, scope))
        if isinstance(expr, EnterOf):
            return self.entered(self.eval(expr.value, scope), expr.is_async)
        if isinstance(expr, Annotation):
            return self.instances_of(expr.type, scope)
        if isinstance(expr, Scoped):
            if expr.scope in self.project.functions:
                return self.eval(expr.value, self.function(expr.scope))
            return NOTHING
        if isinstance(expr, Either):
            return _cap(v for option in expr.options for v in self.eval(option, scope))
        return NOTHING

    # -- memoised, with a guard against cycles (a name bound from itself, mutual imports) --

    def _once(self, key: object, compute: Callable[[], Values]) -> Values:
        """``compute()``, or NOTHING while ``key`` is being computed further up the stack."""
        if key in self._busy:
            return NOTHING
        self._busy.add(key)
        try:
            return compute()
        finally:
            self._busy.discard(key)

    def _memo(
        self, cache: dict[Any, Values], key: Any, busy: object, compute: Callable[[], Values]
    ) -> Values:
        """Like ``_once``, remembering the result (not the NOTHING of a cycle)."""
        found = cache.get(key)
        if found is not None:
            return found
        if busy in self._busy:
            return NOTHING
        result = self._once(busy, compute)
        cache[key] = result
        return result

    def lookup(self, name: str, scope: FunctionFacts) -> Values:
        key = (scope.qualname, name)
        return self._memo(self._names, key, key, lambda: self._lookup(name, scope))

    def _lookup(self, name: str, scope: FunctionFacts) -> Values:
        for param in scope.params:
            if param.name == name:
                return self.param_value(scope, param)
        bindings = scope.names.get(name)
        if bindings is not None:
            return _cap(v for b in bindings for v in self.eval(b, scope))
        if scope.parent is not None and scope.parent in self.project.functions:
            return self.lookup(name, self.function(scope.parent))
        module = self.module_of(scope.qualname)
        body = module.body
        if scope is not body:
            return self.lookup(name, body)
        for star in module.star_imports:
            target = self.project.find_module(star, module)
            if target is not None:
                found = self.lookup(name, self.project.modules[target].body)
                if found:
                    return found
        if name in BUILTINS:
            return frozenset({Value(EXT, self.catalog.canonical(name))})
        return NOTHING

    def resolve_import(self, dotted: str, importer: ModuleFacts) -> Values:
        key = (importer.name, dotted)
        return self._memo(self._imports, key, key, lambda: self._resolve_import(dotted, importer))

    def _resolve_import(self, dotted: str, importer: ModuleFacts) -> Values:
        module = self.project.find_module(dotted, importer)
        if module is not None:
            return frozenset({Value(MODULE, module)})
        head, _, last = dotted.rpartition(".")
        if head:
            owner = self.project.find_module(head, importer)
            if owner is not None:
                return self.attribute(frozenset({Value(MODULE, owner)}), last)
            parents = self.resolve_import(head, importer)
            if any(v.kind != EXT for v in parents):
                return self.attribute(parents, last)
        return frozenset({Value(EXT, self.catalog.canonical(dotted))})

    def state_attribute(self, name: str) -> Values:
        """`request.app.state.<name>`: whatever the project stores there (in its lifespan)."""

        def stored() -> Values:
            out: set[Value] = set()
            for module in self.project.by_path.values():
                for attr, expr in module.state_attrs:
                    if attr == name:
                        out.update(self.eval(expr, module.body))
            return _cap(out)

        return self._once(("state", name), stored)

    # -- parameters --

    def param_value(self, fn: FunctionFacts, param: Param) -> Values:
        if fn.owner is not None and fn.params and fn.params[0] is param:
            decorators = {self.decorator_name(d, fn) for d in fn.decorators}
            if "staticmethod" not in decorators:
                kind = CLASS if "classmethod" in decorators else INST
                return frozenset({Value(kind, fn.owner)})
        injected = self.dependency_of(param, fn)
        if param.annotation is not None:
            declared = self.instances_of(param.annotation, fn)
            if declared:
                return declared
        if injected is not None:
            return self.dependency_value(injected, fn)
        if param.annotation is None and not param.name.startswith("*"):
            return self.arguments_for(fn, param)
        return NOTHING

    def callers(self, name: str) -> list[tuple[Call, FunctionFacts]]:
        """Every call in the project spelled with this name (`name(...)` or `x.name(...)`)."""
        if self._callers is None:
            index: dict[str, list[tuple[Call, FunctionFacts]]] = {}
            for fn in self.project.functions.values():
                for fact in fn.calls:
                    func = fact.call.func
                    spelled = func.attr if isinstance(func, Attr) else getattr(func, "id", None)
                    if isinstance(spelled, str):
                        index.setdefault(spelled, []).append((fact.call, fn))
            self._callers = index
        return self._callers.get(name, [])

    def arguments_for(self, fn: FunctionFacts, param: Param) -> Values:
        """An unannotated parameter is whatever the project's call sites pass to it."""
        if fn.name == "<lambda>" or fn.name.startswith("<"):
            return NOTHING
        position = fn.params.index(param)
        spelled, target_kind, target = fn.name, FUNC, fn.qualname
        if fn.owner is not None:
            position -= 1  # self
            if fn.name == "__init__":
                spelled = self.project.classes[fn.owner].name
                target_kind, target = CLASS, fn.owner
        if position < 0:
            return NOTHING
        out: set[Value] = set()
        for call, scope in self.callers(spelled)[:MAX_CALL_SITES]:
            argument: Expr | None = None
            for key, value in call.kwargs:
                if key == param.name:
                    argument = value
            if argument is None and position < len(call.args):
                argument = call.args[position]
            if argument is None or isinstance(argument, Starred):
                continue
            callees = self.eval(call.func, scope)
            if any(v.kind == target_kind and v.name == target for v in callees):
                out.update(self.eval(argument, scope))
        return _cap(out)

    def dependency_of(self, param: Param, fn: FunctionFacts) -> Expr | None:
        """The callable FastAPI calls for this parameter (`Depends(x)`), if any."""
        for expr in (param.default, param.annotation):
            found = self.find_depends(expr, fn)
            if found is not None:
                return found
        return None

    def find_depends(self, expr: Expr | None, scope: FunctionFacts) -> Expr | None:
        if isinstance(expr, Call):
            if self.is_depends(expr, scope):
                return expr.args[0] if expr.args else dict(expr.kwargs).get("dependency")
            return None
        if isinstance(expr, Subscript):
            items = expr.key.items if isinstance(expr.key, Seq) else ()
            for item in items[1:]:
                if isinstance(item, Call) and self.is_depends(item, scope):
                    return item.args[0] if item.args else None
        if isinstance(expr, Name):
            # An `Annotated` alias defined elsewhere: CurrentUser = Annotated[User, Depends(...)]
            for binding in self.raw_bindings(expr.id, scope):
                found = self.find_depends(binding[0], binding[1])
                if found is not None:
                    return found
        return None

    def raw_bindings(self, name: str, scope: FunctionFacts) -> list[tuple[Expr, FunctionFacts]]:
        """The expressions assigned to a module-level name, following imports."""
        module = self.module_of(scope.qualname)
        out: list[tuple[Expr, FunctionFacts]] = []
        for binding in module.body.names.get(name, ()):
            if isinstance(binding, ImportRef):
                head, _, last = binding.target.rpartition(".")
                target = self.project.find_module(head, module) if head else None
                if target is not None and (target, last) not in self._busy:
                    self._busy.add((target, last))
                    try:
                        out.extend(self.raw_bindings(last, self.project.modules[target].body))
                    finally:
                        self._busy.discard((target, last))
            else:
                out.append((binding, module.body))
        return out

    def is_depends(self, call: Call, scope: FunctionFacts) -> bool:
        func = call.func
        if isinstance(func, Name) and func.id in {"Depends", "Security"}:
            values = self.eval(func, scope)
            return not values or any(v.name in DEPENDS for v in values)
        return isinstance(func, Attr) and func.attr in {"Depends", "Security"}

    def dependency_value(self, dependency: Expr, scope: FunctionFacts) -> Values:
        out: set[Value] = set()
        for v in self.eval(dependency, scope):
            if v.kind == FUNC:
                fn = self.function(v.name)
                if fn.is_generator:
                    out.update(self.yields_of(v.name))
                else:
                    out.update(self.returns_of(v.name))
            elif v.kind == CLASS:
                out.add(Value(INST, v.name))
            elif v.kind == INST:
                call = self.method(v.name, "__call__")
                if call is not None:
                    out.update(self.returns_of(call))
        return _cap(out)

    # -- types from annotations --

    def instances_of(self, annotation: Expr, scope: FunctionFacts) -> Values:
        if isinstance(annotation, Const):
            return NOTHING
        if isinstance(annotation, BinOp) and annotation.op == "|":
            return _cap(
                self.instances_of(annotation.left, scope)
                | self.instances_of(annotation.right, scope)
            )
        if isinstance(annotation, Subscript):
            outer = self.eval(annotation.value, scope)
            names = {v.name for v in outer}
            index = annotation.key
            args = index.items if isinstance(index, Seq) and index.items else (index,)
            if names & TRANSPARENT_GENERICS:
                if "typing.Union" in names or "typing.Optional" in names:
                    return _cap(v for a in args for v in self.instances_of(a, scope))
                return self.instances_of(args[0], scope)
            if names & SEQUENCE_GENERICS:
                element = self.instances_of(args[0], scope)
                return _cap(Value(INST, "list", v.name) for v in element if v.kind == INST)
            if "type" in names or "typing.Type" in names:
                return _cap(
                    Value(CLASS if v.name in self.project.classes else EXT, v.name)
                    for v in self.instances_of(args[0], scope)
                    if v.kind == INST
                )
            return _cap(Value(INST, v.name) for v in outer if v.kind in {CLASS, EXT})
        out: set[Value] = set()
        for v in self.eval(annotation, scope):
            if v.kind == CLASS or (v.kind == EXT and v.name not in BUILTINS):
                out.add(Value(INST, v.name))
        return _cap(out)

    # -- functions --

    def returns_of(self, qualname: str) -> Values:
        def returned() -> Values:
            fn = self.function(qualname)
            out: set[Value] = set()
            for expr in fn.returns:
                out.update(self.eval(expr, fn))
            if not out and fn.returns_annotation is not None:
                out.update(self.instances_of(fn.returns_annotation, fn))
            return _cap(out)

        return self._memo(self._returns, qualname, ("returns", qualname), returned)

    def yields_of(self, qualname: str) -> Values:
        fn = self.function(qualname)
        return self._once(
            ("yields", qualname), lambda: _cap(v for expr in fn.yields for v in self.eval(expr, fn))
        )

    def decorator_name(self, decorator: Expr, scope: FunctionFacts) -> str:
        """The qualified name of a library decorator (`property`, `contextlib.contextmanager`)."""
        target = decorator.func if isinstance(decorator, Call) else decorator
        if isinstance(target, Name) and target.id in {"staticmethod", "classmethod", "property"}:
            return target.id
        names = [v.name for v in self.eval(target, self.module_scope(scope)) if v.kind == EXT]
        return names[0] if names else ""

    def module_scope(self, scope: FunctionFacts) -> FunctionFacts:
        # Decorators of a method are evaluated in the scope around the class.
        if scope.parent is not None and scope.parent in self.project.functions:
            return self.function(scope.parent)
        return self.module_of(scope.qualname).body

    def is_context_manager(self, fn: FunctionFacts) -> bool:
        return any(self.decorator_name(d, fn) in CONTEXT_MANAGER_DECORATORS for d in fn.decorators)

    def is_property(self, fn: FunctionFacts) -> bool:
        return any(self.decorator_name(d, fn) in PROPERTY_DECORATORS for d in fn.decorators)

    def is_validator(self, fn: FunctionFacts) -> bool:
        return any(self.decorator_name(d, fn) in PYDANTIC_VALIDATORS for d in fn.decorators)

    def wrapper_of(self, decorator: FunctionFacts) -> tuple[str, bool] | None:
        """The nested function a decorator returns in place of the decorated one, and whether
        it calls the decorated function itself (rather than handing it to a thread)."""
        if not decorator.params:
            return None
        wrapped = decorator.params[0].name
        for value in self.returns_of(decorator.qualname):
            if value.kind != FUNC or value.name == decorator.qualname:
                continue
            inner = self.project.functions[value.name]
            if inner.parent != decorator.qualname:
                continue
            calls = any(
                isinstance(c.call.func, Name) and c.call.func.id == wrapped for c in inner.calls
            )
            return value.name, calls
        return None

    # -- calls --

    def call_result(self, call: Call, scope: FunctionFacts) -> Values:
        out: set[Value] = set()
        for callee in self.eval(call.func, scope):
            out.update(self.result_of_calling(callee, call, scope))
        return _cap(out)

    def result_of_calling(self, callee: Value, call: Call, scope: FunctionFacts) -> Values:
        if callee.kind == FUNC:
            fn = self.function(callee.name)
            if self.is_context_manager(fn):
                return frozenset({Value(CM, callee.name)})
            if fn.is_generator:
                return frozenset({Value(GEN, callee.name)})
            return self.returns_of(callee.name)
        if callee.kind == CLASS:
            return frozenset({Value(INST, callee.name)})
        if callee.kind == INST:
            method = self.method(callee.name, "__call__")
            if method is not None:
                return self.returns_of(method)
            info = self.catalog.types.get(callee.name)
            if info is not None and info.call:
                return frozenset({Value(INST, info.call)})
            return NOTHING
        if callee.kind == EXT:
            name = callee.name
            if name in DEPENDS and call.args:
                return self.dependency_value(call.args[0], scope)
            if name == "functools.partial" and call.args:
                return self.eval(call.args[0], scope)
            spec = self.catalog.result_of(name)
            if spec is not None:
                return self.from_spec(spec, callee, call, scope)
            last = name.rpartition(".")[2]
            if last[:1].isupper() and last not in BUILTINS:
                return frozenset({Value(INST, name)})
        return NOTHING

    def from_spec(self, spec: str, callee: Value, call: Call, scope: FunctionFacts) -> Values:
        """A catalog result type: "T", "T[$1]", "$T", "$1", "$self", "list[$T]"."""
        # Instances a sync SQLAlchemy session hands out lazy-load their relationships.
        origin = "orm" if callee.name.startswith("sqlalchemy.") else ""
        if spec == "$self":
            return frozenset({Value(INST, callee.name.rpartition(".")[0], callee.arg)})
        if spec == "$T":
            return frozenset({Value(INST, callee.arg, "", origin)}) if callee.arg else NOTHING
        if spec == "$1":
            return _cap(Value(INST, c, "", origin) for c in self._classes_in(call, scope))
        if spec.endswith("]"):
            base, _, param = spec[:-1].partition("[")
            if param == "$T":
                return frozenset({Value(INST, base, callee.arg, origin if base == "list" else "")})
            if param == "$1":
                classes = self._classes_in(call, scope)
                if classes:
                    return _cap(Value(INST, base, c) for c in classes)
                return frozenset({Value(INST, base)})
            return frozenset({Value(INST, base)})
        return frozenset({Value(INST, spec)})

    def _classes_in(self, call: Call, scope: FunctionFacts) -> list[str]:
        if not call.args:
            return []
        out = []
        for v in self.eval(call.args[0], scope):
            if v.kind == CLASS:
                out.append(v.name)
            elif v.kind == INST and v.arg:
                out.append(v.arg)
        return out

    # -- attributes --

    def attribute(self, bases: Values, attr: str) -> Values:
        out: set[Value] = set()
        for base in bases:
            out.update(self._attribute(base, attr))
        return _cap(out)

    def _attribute(self, base: Value, attr: str) -> Values:
        kind = base.kind
        if kind == MODULE:
            submodule = f"{base.name}.{attr}"
            if submodule in self.project.modules:
                return frozenset({Value(MODULE, submodule)})
            module = self.project.modules[base.name]
            return self.lookup(attr, module.body)
        if kind == CLASS:
            return self.class_attribute(base.name, attr, instance=False)
        if kind == INST:
            if base.name in self.project.classes:
                return self.class_attribute(base.name, attr, instance=True)
            return self.library_attribute(base, attr)
        if kind == EXT:
            return frozenset({Value(EXT, self.catalog.canonical(f"{base.name}.{attr}"))})
        return NOTHING

    def library_attribute(self, base: Value, attr: str) -> Values:
        name = base.name
        if name == "list":
            return NOTHING
        info = self.catalog.types.get(name)
        method = Value(EXT, f"{name}.{attr}", base.arg)
        if info is None:
            return frozenset({method})
        if attr in info.returns and attr not in info.blocking and not attr.startswith("$"):
            # Could be a property as well as a method: keep both readings.
            spec = info.returns[attr]
            if not spec.startswith("$") and "[" not in spec:
                return frozenset({method, Value(INST, spec)})
            return frozenset({method})
        if info.attr and attr not in info.blocking and not info.blocks(attr):
            return frozenset({Value(INST, info.attr)})
        return frozenset({method})

    def mro(self, qualname: str) -> tuple[str, ...]:
        """The project classes a class inherits from, itself first (depth-first, no C3)."""
        found = self._mro.get(qualname)
        if found is not None:
            return found
        self._mro[qualname] = (qualname,)
        cls = self.project.classes.get(qualname)
        if cls is None:
            return ()
        order = [qualname]
        scope = self.class_scope(cls)
        ext: list[str] = []
        for base in cls.bases:
            for v in self.eval(base, scope):
                if v.kind == CLASS:
                    for name in self.mro(v.name):
                        if name not in order:
                            order.append(name)
                    ext.extend(self.library_bases(v.name))
                elif v.kind == EXT:
                    ext.append(v.name)
        self._mro[qualname] = tuple(order)
        self._ext_bases[qualname] = tuple(dict.fromkeys(ext))
        return self._mro[qualname]

    def library_bases(self, qualname: str) -> tuple[str, ...]:
        """Library classes anywhere among a project class's ancestors."""
        self.mro(qualname)
        return self._ext_bases.get(qualname, ())

    def class_scope(self, cls: ClassFacts) -> FunctionFacts:
        if cls.parent is not None and cls.parent in self.project.functions:
            return self.function(cls.parent)
        return self.module_of(cls.qualname).body

    def method(self, class_qualname: str, name: str) -> str | None:
        if class_qualname not in self.project.classes:
            return None
        for owner in self.mro(class_qualname):
            found = self.project.classes[owner].methods.get(name)
            if found is not None:
                return found
        return None

    def class_attribute(self, qualname: str, attr: str, instance: bool) -> Values:
        key = (qualname, attr if instance else "class:" + attr)
        return self._memo(
            self._class_attrs, key, key, lambda: self._class_attribute(qualname, attr, instance)
        )

    def _class_attribute(self, qualname: str, attr: str, instance: bool) -> Values:
        out: set[Value] = set()
        for owner in self.mro(qualname):
            cls = self.project.classes[owner]
            method = cls.methods.get(attr)
            if method is not None:
                fn = self.function(method)
                if instance and self.is_property(fn):
                    return self.returns_of(method)
                return frozenset({Value(FUNC, method)})
            values = cls.attrs.get(attr)
            if values:
                scope = self.class_scope(cls)
                for expr in values:
                    out.update(self.eval(expr, scope))
            if instance:
                for method_name in cls.methods.values():
                    fn = self.function(method_name)
                    for name, expr in fn.self_attrs:
                        if name == attr:
                            out.update(self.eval(expr, fn))
            if out:
                return _cap(out)
        # Inherited from a library class (`User.get(...)` on a peewee model, `self.session`
        # of a requests.Session subclass).
        for ext in self.library_bases(qualname):
            out.update(self.library_attribute(Value(INST, ext), attr))
        return _cap(out)

    # -- subscripts, iteration, `with` --

    def subscript(self, bases: Values) -> Values:
        out: set[Value] = set()
        for base in bases:
            if base.kind == INST:
                info = self.catalog.types.get(base.name)
                if info is not None and info.item:
                    out.add(Value(INST, info.item))
                elif base.name == "list" and base.arg:
                    out.add(Value(INST, base.arg, "", base.origin))
        return _cap(out)

    def iterated(self, iterables: Values) -> Values:
        out: set[Value] = set()
        for v in iterables:
            if v.kind == GEN:
                out.update(self.yields_of(v.name))
            elif v.kind == INST and v.arg:
                out.add(Value(INST, v.arg, "", v.origin))
        return _cap(out)

    def entered(self, managers: Values, is_async: bool) -> Values:
        out: set[Value] = set()
        for v in managers:
            if v.kind == CM:
                out.update(self.yields_of(v.name))
            elif v.kind == INST and v.name in self.project.classes:
                enter = self.method(v.name, "__aenter__" if is_async else "__enter__")
                if enter is not None:
                    out.update(self.returns_of(enter))
                if enter is None or not out:
                    out.add(v)
            elif v.kind == INST:
                # Library context managers nearly always return themselves from __enter__.
                out.add(v)
        return _cap(out)
