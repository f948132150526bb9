"""`cloudlet analyze PATH`: blocking calls on the event loop, grouped by route.

Exit code 1 when findings remain, 0 when there are none, 2 when the project cannot be analyzed.
"""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cloudlet.analyze import Analysis, Config, ConfigError, run
from cloudlet.analyze.fixes import apply_fixes, plan_fixes
from cloudlet.analyze.report import print_text, relocate, to_json, to_sarif


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"


def analyze_command(
    path: Annotated[
        Path, typer.Argument(help="The project folder (where its package and pyproject.toml are).")
    ] = Path("."),
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="text (grouped by route), json or sarif.")
    ] = OutputFormat.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file.")
    ] = None,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Apply the provably safe rewrites (time.sleep → asyncio.sleep), show a diff.",
        ),
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Parse every file; neither read nor write the cache.")
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Where the facts cache lives (default: PATH/.cloudlet-cache)."),
    ] = None,
) -> None:
    """Find blocking calls on code FastAPI runs on the event loop, with the chain and a fix.

    Exit code 1 when blocking calls are found, 0 when there are none, 2 on bad input.
    """
    err = Console(stderr=True)
    started = time.perf_counter()
    try:
        config = Config.from_project(path)
        analysis = run(path, config, use_cache=not no_cache, cache_dir=cache_dir)
    except (ConfigError, NotADirectoryError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc

    if fix:
        fixes = plan_fixes(analysis.root, analysis.findings)
        diff_console = Console() if output_format is OutputFormat.text and output is None else err
        for file_fix in fixes:
            diff_console.print(file_fix.diff, highlight=False, markup=False, end="")
        apply_fixes(fixes)
        if fixes:
            count = sum(f.applied for f in fixes)
            err.print(f"[green]fixed[/green] {count} call(s) in {len(fixes)} file(s)")
            analysis = run(path, config, use_cache=not no_cache, cache_dir=cache_dir)

    elapsed = time.perf_counter() - started
    findings = relocate(analysis.findings, str(path))
    if output_format is OutputFormat.json:
        _emit(to_json(findings), output)
    elif output_format is OutputFormat.sarif:
        _emit(to_sarif(analysis.findings, analysis.root), output)
    else:
        console = (
            Console(file=output.open("w", encoding="utf-8"), soft_wrap=True, no_color=True)
            if output
            else Console(soft_wrap=True)
        )
        try:
            print_text(findings, console, _summary(analysis, elapsed))
        finally:
            if output is not None:
                console.file.close()
    for rel, error in sorted(analysis.syntax_errors.items()):
        err.print(f"[yellow]skipped[/yellow] {rel}: {error}")
    raise typer.Exit(1 if analysis.findings else 0)


def _summary(analysis: Analysis, elapsed: float) -> str:
    stats = analysis.stats
    entries = len({f.entry.function for f in analysis.findings})
    head = (
        f"[bold]{len(analysis.findings)} blocking call(s)[/bold] reached from {entries} "
        "loop entry point(s)"
        if analysis.findings
        else "[green]No blocking calls on the event loop.[/green]"
    )
    return (
        f"{head}  [dim]{stats.get('files', 0)} files ({stats.get('cached', 0)} cached), "
        f"{stats.get('entry_points', 0)} entry points, {stats.get('unresolved_calls', 0)} calls "
        f"on loop paths not resolved, {elapsed:.2f} s[/dim]"
    )


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")
