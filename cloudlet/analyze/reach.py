"""From every loop entry point, every blocking call it reaches, with the chain that gets there.

Per function, a summary maps each reachable blocking call to the shortest chain found; entry
points read their summaries. `# sync-ok` prunes: a marked `def` contributes nothing, a marked
call site or blocking line is skipped.
"""

from __future__ import annotations

from typing import NamedTuple

from cloudlet.analyze.callgraph import CallGraph
from cloudlet.analyze.catalog import BlockingApi
from cloudlet.analyze.entrypoints import EntryPoint
from cloudlet.analyze.findings import Entry, Finding, Hop, Location, dedupe
from cloudlet.analyze.fixes import suggest_fix
from cloudlet.analyze.pragma import silences_function, silences_lines


class Sink(NamedTuple):
    file: str
    line: int
    col: int
    api: BlockingApi
    function: str


Summary = dict[tuple[str, int, str], tuple[Sink, tuple[Hop, ...]]]
Edge = tuple[Hop, str]  # the call, and the function it runs


class Reach:
    """Summaries over the call graph, computed callees first, one strongly connected component
    (a group of mutually recursive functions) at a time, so recursion loses nothing."""

    def __init__(self, graph: CallGraph) -> None:
        self.graph = graph
        self.project = graph.project
        self._summaries: dict[str, Summary] = {}
        self._edges: dict[str, list[Edge]] = {}
        self._sinks: dict[str, Summary] = {}

    def summary(self, qualname: str) -> Summary:
        if qualname not in self._summaries:
            self._solve(qualname)
        return self._summaries[qualname]

    # -- the graph, as the pragmas leave it --

    def _expand(self, qualname: str) -> list[Edge]:
        """Direct blocking calls and outgoing calls of one function (memoized)."""
        edges = self._edges.get(qualname)
        if edges is not None:
            return edges
        module = self.project.module_of[qualname]
        fn = self.project.functions[qualname]
        edges = []
        sinks: Summary = {}
        if not silences_function(module, fn):
            for step in self.graph.steps(qualname):
                if silences_lines(module, step.line, step.end_line):
                    continue
                if step.api is not None:
                    key = (module.path, step.line, step.api.name)
                    sink = Sink(module.path, step.line, step.col, step.api, qualname)
                    sinks.setdefault(key, (sink, ()))
                elif step.target is not None and step.target != qualname:
                    caller, callee = self.short(qualname), self.short(step.target)
                    offload = self._offload_spelling(step.target) if step.how == "calls" else None
                    hop = Hop(module.path, step.line, caller, callee, step.how, offload)
                    edges.append((hop, step.target))
        self._edges[qualname] = edges
        self._sinks[qualname] = sinks
        return edges

    def _solve(self, root: str) -> None:
        """Tarjan's algorithm (iterative); each component is solved as soon as it is closed."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                if node in index or node in self._summaries:
                    continue
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            edges = self._expand(node)
            pushed = False
            while position < len(edges):
                target = edges[position][1]
                position += 1
                if target in self._summaries:
                    continue
                if target not in index:
                    work.append((node, position))
                    work.append((target, 0))
                    pushed = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if pushed:
                continue
            for _, target in edges:
                if target in on_stack and target in low and target != node:
                    low[node] = min(low[node], low[target])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                self._solve_component(component)
            if work:
                parent = work[-1][0]
                if parent in low and node in low:
                    low[parent] = min(low[parent], low[node])

    def _solve_component(self, members: list[str]) -> None:
        inside = set(members)
        summaries: dict[str, Summary] = {m: dict(self._sinks[m]) for m in members}
        for member in members:  # calls leaving the component: their summaries are final
            for hop, target in self._edges[member]:
                if target not in inside:
                    _merge(summaries[member], hop, self._summaries.get(target, {}))
        changed = len(members) > 1 or any(t in inside for _, t in self._edges[members[0]])
        while changed:  # calls inside the component: iterate until no chain gets shorter
            changed = False
            for member in members:
                for hop, target in self._edges[member]:
                    if target in inside and _merge(summaries[member], hop, summaries[target]):
                        changed = True
        self._summaries.update(summaries)

    def findings(self, entries: dict[str, EntryPoint]) -> list[Finding]:
        out: list[Finding] = []
        for qualname, entry_point in entries.items():
            module = self.project.module_of[qualname]
            fn = self.project.functions[qualname]
            entry = Entry(
                file=module.path,
                line=fn.line,
                function=self.short(qualname),
                reason=entry_point.reason,
                label=entry_point.label,
                severity=entry_point.severity,
                users=tuple(entry_point.users),
            )
            for sink, hops in self.summary(qualname).values():
                call_site = (
                    Location(hops[0].file, hops[0].line) if hops else Location(sink.file, sink.line)
                )
                sink_fn = self.project.functions[sink.function]
                out.append(
                    Finding(
                        file=sink.file,
                        line=sink.line,
                        column=sink.col,
                        api=sink.api.name,
                        kind=sink.api.kind,
                        message=f"`{sink.api.name}` {sink.api.message}",
                        fix=suggest_fix(sink.api, entry_point, fn, hops),
                        entry=entry,
                        call_site=call_site,
                        chain=hops,
                        severity=entry_point.severity,
                        rewrite=sink.api.rewrite if sink_fn.is_async else None,
                        function=self.short(sink.function),
                    )
                )
        return dedupe(out)

    def _offload_spelling(self, qualname: str) -> str | None:
        fn = self.project.functions[qualname]
        if fn.is_async or fn.is_generator or fn.name.startswith("<"):
            return None
        if fn.owner is not None:
            if fn.name.startswith("__"):
                return None
            return f"<{self.project.classes[fn.owner].name}>.{fn.name}"
        return fn.name

    def short(self, qualname: str) -> str:
        """`app.services.Billing.charge` → `Billing.charge`: the file already names the module."""
        module = self.project.module_of.get(qualname)
        if module is not None and qualname.startswith(module.name + "."):
            return qualname[len(module.name) + 1 :]
        return qualname


def _merge(into: Summary, hop: Hop, callee: Summary) -> bool:
    """Add the callee's blocking calls behind this hop; True when anything was added or a
    chain got shorter."""
    changed = False
    for key, (sink, hops) in callee.items():
        known = into.get(key)
        if known is None or len(known[1]) > len(hops) + 1:
            into[key] = (sink, (hop, *hops))
            changed = True
    return changed
