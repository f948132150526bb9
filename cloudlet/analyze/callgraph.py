"""What running one function does: the project functions it runs and the blocking calls it makes.

Only what runs *now, on this thread* is a step. Calling a generator function runs nothing until
it is iterated; a callable handed to `run_in_threadpool`, `asyncio.to_thread`, an executor or a
thread is only passed, never called, so it is no step at all (that is how offloading is modelled:
`run_in_threadpool(f, x)` has no edge to f, while `run_in_threadpool(f(x))` calls f right here).
"""

from __future__ import annotations

from typing import NamedTuple

from cloudlet.analyze.catalog import BlockingApi
from cloudlet.analyze.facts import (
    Attr,
    BinOp,
    Call,
    CallFact,
    Const,
    DictOf,
    Expr,
    FunctionFacts,
    Name,
)
from cloudlet.analyze.frameworks import EAGER_LOADING, PYDANTIC_MODELS, RELATIONSHIPS
from cloudlet.analyze.infer import CLASS, CM, EXT, FUNC, GEN, INST, Inference, Value, Values


def _is_eager(call: Call) -> bool:
    stack: list[Expr] = [v for _, v in call.kwargs]
    while stack:
        expr = stack.pop()
        if isinstance(expr, Const) and expr.value in EAGER_LOADING:
            return True
        if isinstance(expr, DictOf):
            stack.extend(expr.values)
    return False


def _names_in(call: Call) -> set[str]:
    """Every name and attribute spelled in a call's arguments (`fcntl.LOCK_EX | fcntl.LOCK_NB`)."""
    out: set[str] = set()
    stack: list[Expr] = [*call.args, *(v for _, v in call.kwargs)]
    while stack:
        expr = stack.pop()
        if isinstance(expr, Name):
            out.add(expr.id)
        elif isinstance(expr, Attr):
            out.add(expr.attr)
            stack.append(expr.value)
        elif isinstance(expr, BinOp):
            stack.extend((expr.left, expr.right))
    return out


# Builtins that call a callable argument synchronously, right away.
SYNC_CALLERS = {"sorted": "key", "min": "key", "max": "key", "functools.reduce": ""}
LARGE = "bytes.large"


class Step(NamedTuple):
    line: int
    end_line: int
    col: int
    how: str  # "calls", "enters", "iterates", "reads"
    target: str | None = None  # a project function
    api: BlockingApi | None = None  # or a blocking call


class CallGraph:
    def __init__(self, infer: Inference) -> None:
        self.infer = infer
        self.project = infer.project
        self.catalog = infer.catalog
        self._steps: dict[str, tuple[Step, ...]] = {}
        self._decorator_effect: dict[str, bool] = {}
        self._param_calls: dict[str, frozenset[str]] = {}
        self.unresolved: dict[str, int] = {}

    def steps(self, qualname: str) -> tuple[Step, ...]:
        found = self._steps.get(qualname)
        if found is None:
            found = self._steps[qualname] = tuple(self._compute(self.project.functions[qualname]))
        return found

    def _compute(self, fn: FunctionFacts) -> list[Step]:
        infer = self.infer
        out: list[Step] = []
        for call_fact in fn.calls:
            callees = infer.eval(call_fact.call.func, fn)
            if not callees:
                self._note_unresolved(call_fact.call)
            for callee in callees:
                out.extend(self._call_steps(callee, call_fact, fn))
            out.extend(self._callable_arguments(callees, call_fact, fn))
        for with_fact in fn.withs:
            for value in infer.eval(with_fact.ctx, fn):
                for target, api in self._enter(value, with_fact.is_async):
                    out.append(Step(with_fact.line, with_fact.line, 0, "enters", target, api))
        for iter_fact in fn.iters:
            for value in infer.eval(iter_fact.iterable, fn):
                for target, api in self._iterate(value, iter_fact.is_async):
                    out.append(Step(iter_fact.line, iter_fact.line, 0, "iterates", target, api))
        for read in fn.attr_reads:
            for base in infer.eval(read.expr.value, fn):
                target = self._property(base, read.expr.attr)
                if target is not None:
                    out.append(Step(read.line, read.line, read.col, "reads", target))
                api = self._lazy_load(base, read.expr.attr)
                if api is not None:
                    out.append(Step(read.line, read.line, read.col, "reads", api=api))
        return out

    def _note_unresolved(self, call: Call) -> None:
        func = call.func
        label = func.id if isinstance(func, Name) else type(func).__name__
        self.unresolved[label] = self.unresolved.get(label, 0) + 1

    # -- calls --

    def _call_steps(self, callee: Value, fact: CallFact, fn: FunctionFacts) -> list[Step]:
        step = Step(fact.line, fact.end_line, fact.col, "calls")
        kind = callee.kind
        if kind == FUNC:
            target = self.project.functions[callee.name]
            if target.is_generator or self.infer.is_context_manager(target):
                return []  # nothing runs until it is iterated or entered
            if not self.calls_through(callee.name):
                return []  # a project decorator hands it to a thread (or never calls it)
            return [step._replace(target=callee.name)]
        if kind == CLASS:
            return [step._replace(target=t) for t in self._construct(callee.name)]
        if kind == INST:
            if callee.name in self.project.classes:
                method = self.infer.method(callee.name, "__call__")
                return [step._replace(target=method)] if method is not None else []
            return []
        if kind == EXT:
            if fact.awaited:
                return []  # awaited: an async API, whatever inference thought the receiver was
            api = self.catalog.blocking_call(callee.name)
            if api is None:
                return []
            if api.large_input and not self._large_argument(fact.call, fn):
                return []
            if api.unless_args and _names_in(fact.call) & api.unless_args:
                return []
            return [step._replace(api=api)]
        return []

    def _construct(self, class_qualname: str) -> list[str]:
        """Constructing a project class runs __init__ (and a pydantic model's validators)."""
        targets = []
        for name in ("__init__", "__post_init__", "model_post_init"):
            method = self.infer.method(class_qualname, name)
            if method is not None:
                targets.append(method)
        if set(self.infer.library_bases(class_qualname)) & PYDANTIC_MODELS:
            for owner in self.infer.mro(class_qualname):
                for qualname in self.project.classes[owner].methods.values():
                    if self.infer.is_validator(self.project.functions[qualname]):
                        targets.append(qualname)
        return targets

    def _large_argument(self, call: Call, fn: FunctionFacts) -> bool:
        for arg in call.args:
            if any(v.kind == INST and v.name == LARGE for v in self.infer.eval(arg, fn)):
                return True
        return False

    def _callable_arguments(self, callees: Values, fact: CallFact, fn: FunctionFacts) -> list[Step]:
        """Callables passed to something that calls them right away: a project function that
        calls its parameter, `sorted(key=...)`, `functools.partial(...)()` and the like."""
        out: list[Step] = []
        call = fact.call
        for callee in callees:
            positions: list[int] = []
            keywords: list[str] = []
            if callee.kind == FUNC:
                target = self.project.functions[callee.name]
                called = self._called_params(target)
                if not called:
                    continue
                names = [p.name for p in target.params]
                # `obj.method(f)`: the first parameter is self, not an argument.
                bound = target.owner is not None and isinstance(call.func, Attr)
                for i, name in enumerate(names[1:] if bound else names):
                    if name in called:
                        positions.append(i)
                        keywords.append(name)
            elif callee.kind == EXT and callee.name in SYNC_CALLERS:
                keyword = SYNC_CALLERS[callee.name]
                if keyword:
                    keywords.append(keyword)
                else:
                    positions.append(0)
            else:
                continue
            arguments = [call.args[i] for i in positions if i < len(call.args)]
            arguments += [value for key, value in call.kwargs if key in keywords]
            for argument in arguments:
                for value in self.infer.eval(argument, fn):
                    if value.kind == FUNC and not self.project.functions[value.name].is_generator:
                        out.append(Step(fact.line, fact.end_line, fact.col, "calls", value.name))
        return out

    def _called_params(self, fn: FunctionFacts) -> frozenset[str]:
        """The parameters a function calls itself (`def retry(fn): return fn()`)."""
        found = self._param_calls.get(fn.qualname)
        if found is None:
            params = {p.name for p in fn.params}
            found = frozenset(
                c.call.func.id
                for c in fn.calls
                if isinstance(c.call.func, Name) and c.call.func.id in params
            )
            self._param_calls[fn.qualname] = found
        return found

    # -- decorators --

    def calls_through(self, qualname: str) -> bool:
        """Whether calling the decorated function still runs it here, on this thread.

        A project decorator whose wrapper hands the function to `run_in_threadpool` (or stores
        it) breaks the edge; library decorators (`lru_cache`, `retry`) are taken as transparent.
        """
        found = self._decorator_effect.get(qualname)
        if found is not None:
            return found
        self._decorator_effect[qualname] = True
        fn = self.project.functions[qualname]
        result = True
        if fn.decorators:
            scope = self.infer.module_scope(fn)
            for decorator in fn.decorators:
                for value in self.infer.eval(decorator, scope):
                    if value.kind != FUNC or value.name not in self.project.functions:
                        continue
                    deco = self.project.functions[value.name]
                    if not deco.params:
                        continue
                    returns = self.infer.returns_of(deco.qualname)
                    wraps = any(r.kind == FUNC and r.name != deco.qualname for r in returns)
                    wrapper = self.infer.wrapper_of(deco)
                    if wraps and (wrapper is None or not wrapper[1]):
                        result = False
        self._decorator_effect[qualname] = result
        return result

    # -- with, for, attribute reads --

    def _enter(self, value: Value, is_async: bool) -> list[tuple[str | None, BlockingApi | None]]:
        if value.kind == CM:
            return [(value.name, None)]
        if value.kind == INST and value.name in self.project.classes:
            names = ("__aenter__", "__aexit__") if is_async else ("__enter__", "__exit__")
            out: list[tuple[str | None, BlockingApi | None]] = []
            for name in names:
                method = self.infer.method(value.name, name)
                if method is not None:
                    out.append((method, None))
            return out
        if value.kind == INST and not is_async:
            api = self.catalog.blocking_call(value.name + ".__enter__")
            if api is not None:
                return [(None, api)]
        return []

    def _iterate(self, value: Value, is_async: bool) -> list[tuple[str | None, BlockingApi | None]]:
        if value.kind == GEN:
            fn = self.project.functions[value.name]
            if fn.is_async == is_async:
                return [(value.name, None)]
            return []
        if value.kind == INST and value.name in self.project.classes:
            name = "__aiter__" if is_async else "__iter__"
            method = self.infer.method(value.name, name)
            return [(method, None)] if method is not None else []
        if value.kind == INST and not is_async:
            api = self.catalog.blocking_call(value.name + ".__iter__")
            if api is not None:
                return [(None, api)]
        return []

    def _lazy_load(self, base: Value, attr: str) -> BlockingApi | None:
        """A relationship read on an instance a sync Session loaded: a SELECT, unless eager."""
        if base.kind != INST or base.origin != "orm" or base.name not in self.project.classes:
            return None
        for owner in self.infer.mro(base.name):
            cls = self.project.classes[owner]
            for expr in cls.attrs.get(attr, ()):
                if not isinstance(expr, Call):
                    continue
                names = {v.name for v in self.infer.eval(expr.func, self.infer.class_scope(cls))}
                if not names & RELATIONSHIPS or _is_eager(expr):
                    continue
                return BlockingApi(
                    f"{cls.name}.{attr}",
                    "db",
                    "is a lazy-loaded relationship: reading it runs a SELECT on the event loop",
                    f"load it eagerly with the query (`options(selectinload({cls.name}.{attr}))`) "
                    "on an `AsyncSession`, or `await run_in_threadpool(...)`",
                )
        return None

    def _property(self, base: Value, attr: str) -> str | None:
        if base.kind != INST or base.name not in self.project.classes:
            return None
        method = self.infer.method(base.name, attr)
        if method is None:
            return None
        if self.infer.is_property(self.project.functions[method]):
            return method
        return None
