"""The catalog of blocking APIs: data in `catalog.toml`, looked up by fully qualified name."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).with_name("catalog.toml")


@dataclass(frozen=True)
class BlockingApi:
    """One blocking API as matched at a call: `requests.get`, `sqlite3.Cursor.execute`."""

    name: str
    kind: str
    message: str
    fix: str
    rewrite: str | None = None
    large_input: bool = False
    unless_args: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TypeInfo:
    """What the catalog knows about a class: which methods block and what results are."""

    name: str
    kind: str
    blocking: frozenset[str]
    safe: frozenset[str]
    returns: Mapping[str, str]
    attr: str | None = None
    item: str | None = None
    call: str | None = None
    fix: str | None = None

    def blocks(self, method: str) -> bool:
        if method in self.blocking:
            return True
        return (
            "*" in self.blocking
            and method not in self.safe
            and not method.startswith("_")
            and method not in self.returns
        )

    def returns_of(self, method: str) -> str | None:
        return self.returns.get(method) or self.returns.get("*")


@dataclass
class Catalog:
    kinds: dict[str, tuple[str, str]] = field(default_factory=dict)  # kind -> (message, fix)
    calls: dict[str, BlockingApi] = field(default_factory=dict)
    prefixes: dict[str, BlockingApi] = field(default_factory=dict)  # "stripe." -> api
    types: dict[str, TypeInfo] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    non_blocking: frozenset[str] = frozenset()

    def canonical(self, dotted: str) -> str:
        """Map a re-export spelling to the catalog's name (longest matching prefix wins)."""
        if not self.aliases:
            return dotted
        probe = dotted
        while True:
            target = self.aliases.get(probe)
            if target is not None:
                return target + dotted[len(probe) :]
            cut = probe.rfind(".")
            if cut < 0:
                return dotted
            probe = probe[:cut]

    def blocking_call(self, name: str) -> BlockingApi | None:
        """The blocking API called by `name` (a function, constructor or `Type.method`)."""
        if name in self.non_blocking:
            return None
        api = self.calls.get(name)
        if api is not None:
            return api
        for prefix, api in self.prefixes.items():
            if name.startswith(prefix):
                return BlockingApi(name, api.kind, api.message, api.fix)
        owner, _, method = name.rpartition(".")
        info = self.types.get(owner)
        if info is not None and info.blocks(method):
            message, fix = self.kinds.get(info.kind, ("a blocking call", ""))
            return BlockingApi(name, info.kind, message, info.fix or fix)
        return None

    def result_of(self, name: str) -> str | None:
        """The type (spec) a call of `name` returns, if the catalog knows it."""
        found = self.results.get(name)
        if found is not None:
            return found
        owner, _, method = name.rpartition(".")
        info = self.types.get(owner)
        if info is not None:
            return info.returns.get(method) or info.returns.get("*")
        return None

    def with_extra(
        self, blocking: Mapping[str, str | Mapping[str, str]], non_blocking: list[str]
    ) -> Catalog:
        """A copy with a project's own blocking APIs added and some catalog entries removed."""
        calls = dict(self.calls)
        prefixes = dict(self.prefixes)
        for name, spec in blocking.items():
            if isinstance(spec, str):
                kind, message, fix = spec, "", ""
            else:
                kind = spec.get("kind", "custom")
                message, fix = spec.get("message", ""), spec.get("fix", "")
            default_message, default_fix = self.kinds.get(kind, self.kinds["custom"])
            api = BlockingApi(name, kind, message or default_message, fix or default_fix)
            if name.endswith(".*"):
                prefixes[name[:-1]] = api
            else:
                calls[name] = api
        return Catalog(
            kinds=self.kinds,
            calls=calls,
            prefixes=prefixes,
            types=self.types,
            results=self.results,
            aliases=self.aliases,
            non_blocking=self.non_blocking | frozenset(non_blocking),
        )


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    catalog = Catalog()
    for kind, spec in data.get("kind", {}).items():
        catalog.kinds[kind] = (spec["message"], spec["fix"])
    for group in data.get("call", []):
        kind = group["kind"]
        message, fix = catalog.kinds[kind]
        for name in group["names"]:
            api = BlockingApi(
                name,
                kind,
                group.get("message", message),
                group.get("fix", fix),
                rewrite=group.get("rewrite"),
                large_input=group.get("large-input", False),
                unless_args=frozenset(group.get("unless-args", ())),
            )
            if name.endswith(".*"):
                catalog.prefixes[name[:-1]] = api
            else:
                catalog.calls[name] = api
    for spec in data.get("type", []):
        catalog.types[spec["name"]] = TypeInfo(
            name=spec["name"],
            kind=spec["kind"],
            blocking=frozenset(spec.get("blocking", ())),
            safe=frozenset(spec.get("safe", ())),
            returns=dict(spec.get("returns", {})),
            attr=spec.get("attr"),
            item=spec.get("item"),
            call=spec.get("call"),
            fix=spec.get("fix"),
        )
    catalog.results.update(data.get("returns", {}))
    catalog.aliases.update(data.get("alias", {}))
    return catalog


@cache
def default_catalog() -> Catalog:
    with CATALOG_FILE.open("rb") as f:
        return parse_catalog(tomllib.load(f))
