"""Static analysis of a FastAPI project: blocking calls on code the event loop runs.

    from cloudlet.analyze import analyze
    for finding in analyze("path/to/project"):
        print(finding.file, finding.line, finding.api, finding.fix)

The analyzer stands alone: it imports nothing of the rest of Cloudlet and never imports the
project it reads (everything is `ast`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cloudlet.analyze.cache import load_result, save_result, snapshot
from cloudlet.analyze.callgraph import CallGraph
from cloudlet.analyze.catalog import default_catalog
from cloudlet.analyze.config import Config, ConfigError
from cloudlet.analyze.entrypoints import EntryPoint, find_entry_points
from cloudlet.analyze.findings import Entry, Finding, Hop, Location
from cloudlet.analyze.infer import Inference
from cloudlet.analyze.modules import find_sources, load_project
from cloudlet.analyze.reach import Reach

__all__ = [
    "Analysis",
    "Config",
    "ConfigError",
    "Entry",
    "Finding",
    "Hop",
    "Location",
    "analyze",
    "run",
]


@dataclass
class Analysis:
    root: Path
    findings: list[Finding]
    entry_points: dict[str, EntryPoint]
    stats: dict[str, int] = field(default_factory=dict)
    unresolved: dict[str, int] = field(default_factory=dict)
    syntax_errors: dict[str, str] = field(default_factory=dict)


def run(
    path: str | Path,
    config: Config | None = None,
    *,
    use_cache: bool = True,
    cache_dir: str | Path | None = None,
) -> Analysis:
    """Analyze the project at path; the facts cache lives in its `.cloudlet-cache/` by default."""
    root = Path(path).resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    if config is None:
        config = Config.from_project(root)
    sources = list(find_sources(root, config.exclude))
    cache: Path | None = None
    key: str | None = None
    if use_cache:
        cache = Path(cache_dir) if cache_dir is not None else root / config.cache_dir
        key = snapshot(((s.rel, s.module, s.path) for s in sources), repr(config))
        if key is not None:
            stored = load_result(cache, key)
            if isinstance(stored, Analysis):
                # Nothing changed since the last run: its result stands, nothing is read.
                stored.stats.update(parsed=0, cached=len(sources))
                return stored
    project = load_project(root, config.exclude, cache, sources)
    catalog = default_catalog()
    if config.blocking or config.non_blocking:
        catalog = catalog.with_extra(config.blocking, list(config.non_blocking))
    infer = Inference(project, catalog)
    entries = find_entry_points(infer)
    graph = CallGraph(infer)
    findings = Reach(graph).findings(entries)
    stats = dict(project.stats)
    stats.update(
        entry_points=len(entries),
        findings=len(findings),
        unresolved_calls=sum(graph.unresolved.values()),
    )
    errors = {m.path: m.syntax_error for m in project.by_path.values() if m.syntax_error}
    analysis = Analysis(root, findings, entries, stats, graph.unresolved, errors)
    if cache is not None and key is not None:
        save_result(cache, key, analysis)
    return analysis


def analyze(path: str | Path, config: Config | None = None) -> list[Finding]:
    """The findings for the project at path (no cache is written)."""
    return run(path, config, use_cache=False).findings
