"""Per-module facts: what one parsed file says, in a small picklable form.

Everything the analysis needs from a file is extracted here once, so a warm run reads these facts
from the cache and never parses the file again. Expressions are kept symbolic (`Name`, `Attr`,
`Call` ...) and evaluated later, when the whole project is known (see infer.py).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from typing import NamedTuple

# -- symbolic expressions ------------------------------------------------------------------------


class Name(NamedTuple):
    id: str


class Attr(NamedTuple):
    value: Expr
    attr: str


class Call(NamedTuple):
    func: Expr
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]


class Subscript(NamedTuple):
    value: Expr
    key: Expr


class Const(NamedTuple):
    value: str | int | float | bool | bytes | None


class Seq(NamedTuple):
    items: tuple[Expr, ...]


class DictOf(NamedTuple):
    keys: tuple[Expr, ...]
    values: tuple[Expr, ...]


class Await(NamedTuple):
    value: Expr


class BinOp(NamedTuple):
    op: str
    left: Expr
    right: Expr


class FuncRef(NamedTuple):
    """A `def`, `async def` or `lambda` of the project, by qualified name."""

    qualname: str


class ClassRef(NamedTuple):
    qualname: str


class ImportRef(NamedTuple):
    """A name bound by an import: the absolute dotted target."""

    target: str


class IterOf(NamedTuple):
    """An element of iterating `value` (`for x in value`)."""

    value: Expr


class EnterOf(NamedTuple):
    """What `with value as x` binds to x."""

    value: Expr
    is_async: bool


class Annotation(NamedTuple):
    """An instance of the annotated type (`x: Session`)."""

    type: Expr


class Either(NamedTuple):
    options: tuple[Expr, ...]


class Starred(NamedTuple):
    value: Expr


class Unknown(NamedTuple):
    why: str = ""


class Scoped(NamedTuple):
    """An expression to evaluate in another function's scope (`global x` assignments,
    `app.state.x = ...` in a lifespan)."""

    scope: str
    value: Expr


Expr = (
    Name
    | Attr
    | Call
    | Subscript
    | Const
    | Seq
    | DictOf
    | Await
    | BinOp
    | FuncRef
    | ClassRef
    | ImportRef
    | IterOf
    | EnterOf
    | Annotation
    | Either
    | Starred
    | Unknown
    | Scoped
)

UNKNOWN = Unknown()
INTERNED = (Name, Attr, Const, ImportRef, FuncRef, ClassRef, Await)

# -- facts ---------------------------------------------------------------------------------------


class CallFact(NamedTuple):
    call: Call
    line: int
    end_line: int
    col: int
    awaited: bool


class AttrRead(NamedTuple):
    expr: Attr
    line: int
    col: int


class WithFact(NamedTuple):
    ctx: Expr
    line: int
    is_async: bool


class IterFact(NamedTuple):
    iterable: Expr
    line: int
    is_async: bool


class Param(NamedTuple):
    name: str
    annotation: Expr | None
    default: Expr | None


class FunctionFacts(NamedTuple):
    qualname: str
    name: str
    line: int
    header_end: int  # last line of the signature: a `# sync-ok` anywhere on it covers the function
    is_async: bool
    is_generator: bool
    has_await: bool
    decorators: tuple[Expr, ...]
    params: tuple[Param, ...]
    returns_annotation: Expr | None
    calls: tuple[CallFact, ...]
    attr_reads: tuple[AttrRead, ...]
    withs: tuple[WithFact, ...]
    iters: tuple[IterFact, ...]
    names: dict[str, tuple[Expr, ...]]  # local bindings (for the module pseudo-function: globals)
    returns: tuple[Expr, ...]
    yields: tuple[Expr, ...]
    owner: str | None  # the class, for methods
    parent: str | None  # the enclosing function, for closures
    self_attrs: tuple[tuple[str, Expr], ...]  # self.x = value


class ClassFacts(NamedTuple):
    qualname: str
    name: str
    line: int
    bases: tuple[Expr, ...]
    decorators: tuple[Expr, ...]
    methods: dict[str, str]  # name -> function qualname
    attrs: dict[str, tuple[Expr, ...]]  # class-level assignments and annotations
    parent: str | None


class ModuleFacts(NamedTuple):
    name: str
    path: str  # relative to the project root, posix
    is_package: bool
    star_imports: tuple[str, ...]
    functions: dict[str, FunctionFacts]  # every function, including the module's own code
    classes: dict[str, ClassFacts]
    pragma_lines: frozenset[int]
    syntax_error: str | None
    state_attrs: tuple[tuple[str, Expr], ...] = ()  # app.state.<name> = value, anywhere

    @property
    def body(self) -> FunctionFacts:
        """The module's top-level code as a pseudo-function (never run on the loop)."""
        return self.functions[self.name + ".<module>"]


# -- pragmas -------------------------------------------------------------------------------------

PRAGMA = re.compile(r"#\s*(?:sync-ok\b|noqa:[^#\n]*\b(?:ASYNC2\d\d|CLB\d+)\b)")


def pragma_lines(source: str) -> frozenset[int]:
    """Lines with a `# sync-ok` comment (or a `# noqa:` naming ruff's ASYNC2xx or our CLB codes).

    Only real comments count: `"# sync-ok"` inside a string literal silences nothing.
    """
    if not PRAGMA.search(source):
        return frozenset()
    lines: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and PRAGMA.search(token.string):
                lines.add(token.start[0])
    except (tokenize.TokenError, SyntaxError):
        pass
    return frozenset(lines)


# -- extraction ----------------------------------------------------------------------------------

ITERATING_BUILTINS = frozenset(
    {"list", "tuple", "set", "frozenset", "sorted", "sum", "any", "all", "min", "max", "next"}
    | {"dict", "enumerate", "zip", "reversed"}
)
BINOPS = {ast.Div: "/", ast.BitOr: "|", ast.Add: "+", ast.Mod: "%"}
MAX_DEPTH = 60


class _Scope:
    """Facts being collected for one function (or the module body)."""

    def __init__(self, qualname: str, owner: str | None, parent: str | None) -> None:
        self.qualname = qualname
        self.owner = owner
        self.parent = parent
        self.calls: list[CallFact] = []
        self.attr_reads: list[AttrRead] = []
        self.withs: list[WithFact] = []
        self.iters: list[IterFact] = []
        self.names: dict[str, list[Expr]] = {}
        self.returns: list[Expr] = []
        self.yields: list[Expr] = []
        self.self_attrs: list[tuple[str, Expr]] = []
        self.has_await = False
        self.is_generator = False
        self.self_name: str | None = None
        self.globals: set[str] = set()

    def bind(self, name: str, value: Expr) -> None:
        self.names.setdefault(name, []).append(value)


class Extractor:
    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        # The package relative imports start from.
        self.package = module if is_package else module.rpartition(".")[0]
        self.functions: dict[str, FunctionFacts] = {}
        self.classes: dict[str, ClassFacts] = {}
        self.star_imports: list[str] = []
        self.lambdas: dict[int, str] = {}
        self.state_attrs: list[tuple[str, Expr]] = []
        self.module_scope: _Scope | None = None
        self.converted: dict[int, Expr] = {}
        self.interned: dict[tuple[object, ...], Expr] = {}
        self.scope_stack: list[_Scope] = []

    # -- naming --

    def _unique(self, qualname: str) -> str:
        if qualname not in self.functions and qualname not in self.classes:
            return qualname
        n = 2
        while f"{qualname}#{n}" in self.functions or f"{qualname}#{n}" in self.classes:
            n += 1
        return f"{qualname}#{n}"

    def _resolve_from(self, level: int, module: str | None) -> str:
        if level == 0:
            return module or ""
        parts = self.package.split(".") if self.package else []
        if level > 1:
            parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
        base = ".".join(parts)
        if module:
            return f"{base}.{module}" if base else module
        return base

    # -- expressions --

    def expr(self, node: ast.expr | None, depth: int = 0) -> Expr:
        # Each node is converted once: calls and attribute chains nest, and the walk meets
        # their inner parts again.
        if node is None:
            return UNKNOWN
        known = self.converted.get(id(node))
        if known is not None:
            return known
        result = self._expr(node, depth)
        if isinstance(result, INTERNED):
            # Equal leaves and short chains (`self`, `self.db`, `None`) become one object: the
            # cache then stores and loads each once.
            # Children are interned already, so their identity is their value (a tuple key
            # would make Name("x") equal Const("x")).
            key = (type(result), *[id(c) if isinstance(c, tuple) else (type(c), c) for c in result])
            result = self.interned.setdefault(key, result)
        self.converted[id(node)] = result
        return result

    def _expr(self, node: ast.expr, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            return UNKNOWN
        d = depth + 1
        if isinstance(node, ast.Name):
            return Name(node.id)
        if isinstance(node, ast.Attribute):
            return Attr(self.expr(node.value, d), node.attr)
        if isinstance(node, ast.Call):
            args = tuple(self.expr(a, d) for a in node.args)
            kwargs = tuple((k.arg or "**", self.expr(k.value, d)) for k in node.keywords)
            return Call(self.expr(node.func, d), args, kwargs)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, str | int | float | bool | bytes) or value is None:
                return Const(value)
            return UNKNOWN
        if isinstance(node, ast.Subscript):
            return Subscript(self.expr(node.value, d), self.expr(node.slice, d))
        if isinstance(node, ast.Await):
            return Await(self.expr(node.value, d))
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return Seq(tuple(self.expr(e, d) for e in node.elts))
        if isinstance(node, ast.Dict):
            return DictOf(
                tuple(self.expr(k, d) if k is not None else UNKNOWN for k in node.keys),
                tuple(self.expr(v, d) for v in node.values),
            )
        if isinstance(node, ast.BinOp):
            op = BINOPS.get(type(node.op))
            if op is None:
                return UNKNOWN
            return BinOp(op, self.expr(node.left, d), self.expr(node.right, d))
        if isinstance(node, ast.Lambda):
            return FuncRef(self._lambda(node))
        if isinstance(node, ast.IfExp):
            return Either((self.expr(node.body, d), self.expr(node.orelse, d)))
        if isinstance(node, ast.BoolOp):
            return Either(tuple(self.expr(v, d) for v in node.values))
        if isinstance(node, ast.NamedExpr):
            return self.expr(node.value, d)
        if isinstance(node, ast.Starred):
            return Starred(self.expr(node.value, d))
        if isinstance(node, ast.JoinedStr):
            return Const("")
        return UNKNOWN

    def annotation(self, node: ast.expr | None) -> Expr | None:
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                parsed = ast.parse(node.value, mode="eval")
            except SyntaxError:
                return UNKNOWN
            return self.expr(parsed.body)
        return self.expr(node)

    # -- definitions --

    def module_facts(self, tree: ast.Module) -> None:
        scope = _Scope(self.module + ".<module>", None, None)
        self.module_scope = scope
        self.scope_stack.append(scope)
        self._walk(tree.body, scope)
        self.scope_stack.pop()
        self.functions[scope.qualname] = self._finish(
            scope, "<module>", 1, 1, False, (), (), None, False
        )

    def _lambda(self, node: ast.Lambda) -> str:
        known = self.lambdas.get(id(node))
        if known is not None:
            return known
        parent = self.scope_stack[-1] if self.scope_stack else None
        base = parent.qualname if parent is not None else self.module
        qualname = self._unique(f"{base}.<lambda>@{node.lineno}:{node.col_offset}")
        self.lambdas[id(node)] = qualname
        scope = _Scope(qualname, None, parent.qualname if parent is not None else None)
        params = self._params(node.args)
        for p in params:
            scope.bind(p.name, UNKNOWN)
        self.scope_stack.append(scope)
        scope.returns.append(self.expr(node.body))
        self._walk([node.body], scope)
        self.scope_stack.pop()
        self.functions[qualname] = self._finish(
            scope, "<lambda>", node.lineno, node.lineno, False, (), params, None, False
        )
        return qualname

    def _params(self, args: ast.arguments) -> tuple[Param, ...]:
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults.extend(args.defaults)
        params = [
            Param(a.arg, self.annotation(a.annotation), self.expr(d) if d is not None else None)
            for a, d in zip(positional, defaults, strict=True)
        ]
        if args.vararg is not None:
            params.append(Param("*" + args.vararg.arg, None, None))
        for a, kd in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            params.append(
                Param(a.arg, self.annotation(a.annotation), self.expr(kd) if kd else None)
            )
        if args.kwarg is not None:
            params.append(Param("**" + args.kwarg.arg, None, None))
        return tuple(params)

    def _function(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        parent: _Scope,
        owner: str | None,
    ) -> str:
        base = owner if owner is not None else parent.qualname
        if owner is None and not parent.qualname.endswith(".<module>"):
            base = parent.qualname + ".<locals>"
        elif owner is None:
            base = self.module
        qualname = self._unique(f"{base}.{node.name}")
        enclosing = None if parent.qualname.endswith(".<module>") else parent.qualname
        scope = _Scope(qualname, owner, enclosing)
        params = self._params(node.args)
        if owner is not None and params and not _is_static(node):
            scope.self_name = params[0].name
        self.scope_stack.append(scope)
        self._walk(node.body, scope)
        self.scope_stack.pop()
        header_end = node.body[0].lineno - 1 if node.body else node.lineno
        header_end = max(header_end, node.lineno)
        self.functions[qualname] = self._finish(
            scope,
            node.name,
            node.lineno,
            header_end,
            isinstance(node, ast.AsyncFunctionDef),
            tuple(self.expr(d) for d in node.decorator_list),
            params,
            self.annotation(node.returns),
            scope.is_generator,
        )
        return qualname

    def _class(self, node: ast.ClassDef, parent: _Scope) -> str:
        if parent.qualname.endswith(".<module>"):
            qualname = self._unique(f"{self.module}.{node.name}")
        else:
            qualname = self._unique(f"{parent.qualname}.{node.name}")
        methods: dict[str, str] = {}
        attrs: dict[str, list[Expr]] = {}
        # The class body runs at import time: its calls belong to the enclosing scope.
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                fq = self._function(stmt, parent, qualname)
                defaults = [d for d in stmt.args.kw_defaults if d is not None]
                self._walk([*stmt.decorator_list, *stmt.args.defaults, *defaults], parent)
                if not _is_accessor_or_overload(stmt) or stmt.name not in methods:
                    methods[stmt.name] = fq
            elif isinstance(stmt, ast.ClassDef):
                attrs.setdefault(stmt.name, []).append(ClassRef(self._class(stmt, parent)))
            elif isinstance(stmt, ast.Assign):
                value = self.expr(stmt.value)
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        attrs.setdefault(target.id, []).append(value)
                self._walk([stmt.value], parent)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                values = attrs.setdefault(stmt.target.id, [])
                ann = self.annotation(stmt.annotation)
                if ann is not None:
                    values.append(Annotation(ann))
                if stmt.value is not None:
                    values.append(self.expr(stmt.value))
                    self._walk([stmt.value], parent)
            else:
                self._walk([stmt], parent)
        for expr_node in [*node.bases, *node.decorator_list]:
            self._walk([expr_node], parent)
        self.classes[qualname] = ClassFacts(
            qualname=qualname,
            name=node.name,
            line=node.lineno,
            bases=tuple(self.expr(b) for b in node.bases),
            decorators=tuple(self.expr(d) for d in node.decorator_list),
            methods=methods,
            attrs={k: tuple(v) for k, v in attrs.items()},
            parent=None if parent.qualname.endswith(".<module>") else parent.qualname,
        )
        return qualname

    def _finish(
        self,
        scope: _Scope,
        name: str,
        line: int,
        header_end: int,
        is_async: bool,
        decorators: tuple[Expr, ...],
        params: tuple[Param, ...],
        returns_annotation: Expr | None,
        is_generator: bool,
    ) -> FunctionFacts:
        return FunctionFacts(
            qualname=scope.qualname,
            name=name,
            line=line,
            header_end=header_end,
            is_async=is_async,
            is_generator=is_generator,
            has_await=scope.has_await,
            decorators=decorators,
            params=params,
            returns_annotation=returns_annotation,
            calls=tuple(scope.calls),
            attr_reads=tuple(scope.attr_reads),
            withs=tuple(scope.withs),
            iters=tuple(scope.iters),
            names={k: tuple(v) for k, v in scope.names.items()},
            returns=tuple(scope.returns),
            yields=tuple(scope.yields),
            owner=scope.owner,
            parent=scope.parent,
            self_attrs=tuple(scope.self_attrs),
        )

    # -- statements and expressions of one scope --

    def _bind_target(self, target: ast.expr, value: Expr, scope: _Scope) -> None:
        if isinstance(target, ast.Name):
            if target.id in scope.globals and self.module_scope is not None:
                self.module_scope.bind(target.id, Scoped(scope.qualname, value))
            else:
                scope.bind(target.id, value)
        elif isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:
                self._bind_target(elt, UNKNOWN, scope)
        elif (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == scope.self_name
        ):
            scope.self_attrs.append((target.attr, value))
        elif isinstance(target, ast.Attribute) and (
            isinstance(target.value, ast.Attribute) and target.value.attr == "state"
        ):
            self.state_attrs.append((target.attr, Scoped(scope.qualname, value)))

    def _walk(self, nodes: list[ast.stmt] | list[ast.expr], scope: _Scope) -> None:
        stack: list[tuple[ast.AST, bool]] = [(n, False) for n in reversed(nodes)]
        push = stack.append
        while stack:
            node, awaited = stack.pop()
            if isinstance(node, ast.Call):
                call = self.expr(node)
                if isinstance(call, Call):  # not when nested past MAX_DEPTH
                    end = node.end_lineno or node.lineno
                    scope.calls.append(CallFact(call, node.lineno, end, node.col_offset, awaited))
                func = node.func
                if (
                    isinstance(func, ast.Name)
                    and func.id in ITERATING_BUILTINS
                    and node.args
                    and not isinstance(node.args[0], ast.Starred)
                ) or (isinstance(func, ast.Attribute) and func.attr == "join" and node.args):
                    scope.iters.append(IterFact(self.expr(node.args[0]), node.lineno, False))
                for kw in reversed(node.keywords):
                    push((kw.value, False))
                for arg in reversed(node.args):
                    push((arg, False))
                push((func.value if isinstance(func, ast.Attribute) else func, False))
            elif isinstance(node, ast.Attribute):
                if isinstance(node.ctx, ast.Load):
                    attr = self.expr(node)
                    if isinstance(attr, Attr):
                        scope.attr_reads.append(AttrRead(attr, node.lineno, node.col_offset))
                push((node.value, False))
            elif isinstance(node, ast.Name | ast.Constant):
                continue
            elif isinstance(node, ast.Global):
                scope.globals.update(node.names)
            elif isinstance(node, ast.Await):
                scope.has_await = True
                push((node.value, True))
            elif isinstance(node, ast.Assign):
                value = self.expr(node.value)
                for target in node.targets:
                    self._bind_target(target, value, scope)
                    if not isinstance(target, ast.Name):
                        push((target, False))
                push((node.value, False))
            elif isinstance(node, ast.AnnAssign):
                ann = self.annotation(node.annotation)
                if node.value is not None:
                    self._bind_target(node.target, self.expr(node.value), scope)
                    push((node.value, False))
                if ann is not None and isinstance(node.target, ast.Name):
                    scope.bind(node.target.id, Annotation(ann))
            elif isinstance(node, ast.NamedExpr):
                scope.bind(node.target.id, self.expr(node.value))
                push((node.value, False))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                qualname = self._function(node, scope, None)
                scope.bind(node.name, FuncRef(qualname))
                for sub in [*node.decorator_list, *node.args.defaults]:
                    push((sub, False))
                for kd in node.args.kw_defaults:
                    if kd is not None:
                        push((kd, False))
            elif isinstance(node, ast.ClassDef):
                scope.bind(node.name, ClassRef(self._class(node, scope)))
            elif isinstance(node, ast.Lambda):
                self._lambda(node)
            elif isinstance(node, ast.For | ast.AsyncFor):
                is_async = isinstance(node, ast.AsyncFor)
                scope.has_await |= is_async
                iterable = self.expr(node.iter)
                scope.iters.append(IterFact(iterable, node.lineno, is_async))
                self._bind_target(node.target, IterOf(iterable), scope)
                for stmt in reversed([*node.body, *node.orelse]):
                    push((stmt, False))
                push((node.iter, False))
            elif isinstance(node, ast.With | ast.AsyncWith):
                is_async = isinstance(node, ast.AsyncWith)
                scope.has_await |= is_async
                for stmt in reversed(node.body):
                    push((stmt, False))
                for item in reversed(node.items):
                    ctx = self.expr(item.context_expr)
                    scope.withs.append(WithFact(ctx, node.lineno, is_async))
                    if item.optional_vars is not None:
                        self._bind_target(item.optional_vars, EnterOf(ctx, is_async), scope)
                    push((item.context_expr, False))
            elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
                for gen in node.generators:
                    scope.has_await |= bool(gen.is_async)
                    iterable = self.expr(gen.iter)
                    scope.iters.append(IterFact(iterable, node.lineno, bool(gen.is_async)))
                    self._bind_target(gen.target, IterOf(iterable), scope)
                for child in ast.iter_child_nodes(node):
                    push((child, False))
            elif isinstance(node, ast.Return):
                if node.value is not None:
                    scope.returns.append(self.expr(node.value))
                    push((node.value, False))
            elif isinstance(node, ast.Yield | ast.YieldFrom):
                scope.is_generator = True
                if node.value is not None:
                    value = self.expr(node.value)
                    if isinstance(node, ast.YieldFrom):
                        scope.iters.append(IterFact(value, node.lineno, False))
                    else:
                        scope.yields.append(value)
                    push((node.value, False))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        scope.bind(alias.asname, ImportRef(alias.name))
                    else:
                        head = alias.name.partition(".")[0]
                        scope.bind(head, ImportRef(head))
            elif isinstance(node, ast.ImportFrom):
                source = self._resolve_from(node.level, node.module)
                for alias in node.names:
                    if alias.name == "*":
                        self.star_imports.append(source)
                        continue
                    dotted = f"{source}.{alias.name}" if source else alias.name
                    scope.bind(alias.asname or alias.name, ImportRef(dotted))
            else:
                for child in ast.iter_child_nodes(node):
                    push((child, False))


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _is_static(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(_decorator_name(d) == "staticmethod" for d in node.decorator_list)


def _is_accessor_or_overload(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(_decorator_name(d) in {"setter", "deleter", "overload"} for d in node.decorator_list)


def extract(source: bytes, module: str, path: str, is_package: bool) -> ModuleFacts:
    """Parse one file and extract its facts (a file that does not parse yields empty facts)."""
    extractor = Extractor(module, is_package)
    error: str | None = None
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        tree = ast.Module(body=[], type_ignores=[])
    try:
        extractor.module_facts(tree)
    except RecursionError:
        error = "RecursionError: the file nests too deeply"
        extractor = Extractor(module, is_package)
        extractor.module_facts(ast.Module(body=[], type_ignores=[]))
    return ModuleFacts(
        name=module,
        path=path,
        is_package=is_package,
        star_imports=tuple(extractor.star_imports),
        functions=extractor.functions,
        classes=extractor.classes,
        pragma_lines=pragma_lines(source.decode("utf-8", "replace")),
        syntax_error=error,
        state_attrs=tuple(extractor.state_attrs),
    )
