"""`cloudlet bench ...`: one sub-command per benchmark (modules import lazily: they are heavy)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

OptionsT = TypeVar("OptionsT")

bench_app = typer.Typer(
    help="Benchmarks: Cloudlet and its competitors side by side, medians and ratios.",
    no_args_is_help=True,
)


Rounds = Annotated[int, typer.Option(min=1, help="Rounds; every target runs once per round.")]
Quick = Annotated[
    bool, typer.Option("--quick", help="A short run that still exercises every target.")
]
ResultsDir = Annotated[
    Path, typer.Option(help="Where the JSON result goes (bench/results/<name>-<UTC>.json).")
]
Duration = Annotated[int, typer.Option(min=1, help="Seconds of each measured wrk run.")]
Warmup = Annotated[int, typer.Option(min=0, help="Seconds of wrk before each run.")]
MarkdownTable = Annotated[bool, typer.Option(help="Also print the table as Markdown.")]
MarkdownTables = Annotated[bool, typer.Option(help="Also print the tables as Markdown.")]


def _run(name: str, run: Callable[[OptionsT], object], options: OptionsT) -> None:
    """``run(options)``; its RuntimeError is the command's error message and exit status 1."""
    try:
        run(options)
    except RuntimeError as error:
        typer.echo(f"cloudlet bench {name}: {error}", err=True)
        raise typer.Exit(1) from None


# -- cloudlet bench router / connections -------------------------------------------------------


@bench_app.command("router")
def router(
    rounds: Rounds = 3,
    duration: Duration = 10,
    warmup: Warmup = 2,
    connections: Annotated[int, typer.Option(min=1, help="wrk -c (client connections).")] = 64,
    nginx: Annotated[bool, typer.Option(help="Include nginx rows if nginx is installed.")] = True,
    markdown: MarkdownTable = False,
    quick: Quick = False,
    results_dir: ResultsDir = Path("bench/results"),
) -> None:
    """Router speed: direct uvicorn vs the Cloudlet router vs nginx, one FastAPI hello app.

    wrk on one core, each target's servers on the other; targets interleaved per round;
    medians, ratios to direct uvicorn and server CPU per request (router vs app).
    """
    from cloudlet.bench import router as bench

    options = bench.Options(
        rounds=rounds,
        duration=duration,
        warmup=warmup,
        connections=connections,
        nginx=nginx,
        quick=quick,
        results_dir=results_dir,
        markdown=markdown,
    )
    _run("router", bench.run, options)


@bench_app.command("connections")
def connections(
    rounds: Rounds = 3,
    idle: Annotated[
        int, typer.Option(min=1, help="(a) idle keep-alive connections held.")
    ] = 15_000,
    concurrent: Annotated[
        int, typer.Option(min=1, help="(b) requests in flight at once.")
    ] = 10_000,
    instances: Annotated[int, typer.Option(min=1, help="(b) Cloudlet instances.")] = 4,
    hold: Annotated[
        float, typer.Option(help="(a) seconds the idle connections are held before the check.")
    ] = 20.0,
    duration: Annotated[
        int, typer.Option(min=1, help="(a) seconds of each wrk run (before / while held).")
    ] = 5,
    sleep: Annotated[float, typer.Option(help="(b) seconds the endpoint awaits.")] = 1.0,
    markdown: MarkdownTables = False,
    quick: Quick = False,
    results_dir: ResultsDir = Path("bench/results"),
) -> None:
    """Connections: idle keep-alive clients and concurrent slow requests, router vs uvicorn.

    (a) memory per held idle connection, throughput for active clients meanwhile;
    (b) requests in flight at once through the router to several instances: errors, time.
    """
    from cloudlet.bench import connections as bench

    options = bench.Options(
        rounds=rounds,
        idle=idle,
        concurrent=concurrent,
        instances=instances,
        hold=hold,
        duration=duration,
        sleep=sleep,
        quick=quick,
        results_dir=results_dir,
        markdown=markdown,
    )
    _run("connections", bench.run, options)


# -- cloudlet bench coldstart ------------------------------------------------------------------


@bench_app.command("coldstart")
def coldstart(
    rounds: Rounds = 7,
    imports: Annotated[int, typer.Option(min=1, help="Bare imports timed per round.")] = 3,
    markdown: MarkdownTable = False,
    quick: Quick = False,
    results_dir: ResultsDir = Path("bench/results"),
) -> None:
    """Cold starts: time to first byte from zero (zygote alive) and from nothing, next to a
    bare `python -c "import main"` of the same app, on a real `cloudlet up`."""
    from cloudlet.bench import coldstart as bench

    options = bench.Options(
        rounds=rounds, imports=imports, quick=quick, results_dir=results_dir, markdown=markdown
    )
    _run("coldstart", bench.run, options)


# -- cloudlet bench runtime --------------------------------------------------------------------


@bench_app.command("runtime")
def runtime(
    rounds: Rounds = 5,
    duration: Duration = 10,
    warmup: Warmup = 2,
    connections: Annotated[
        int, typer.Option(min=1, help="wrk -c (an instance's default target concurrency).")
    ] = 100,
    sync_ms: Annotated[
        float, typer.Option(min=0, help="Milliseconds the sync endpoint blocks.")
    ] = 2.0,
    threadpool: Annotated[
        list[int] | None,
        typer.Option(
            min=1,
            help="Also run Cloudlet with this CLOUDLET_THREADPOOL_SIZE (repeatable).",
        ),
    ] = None,
    routed: Annotated[
        bool, typer.Option(help="Also run Cloudlet as deployed (router → instance).")
    ] = True,
    markdown: MarkdownTables = False,
    quick: Quick = False,
    results_dir: ResultsDir = Path("bench/results"),
) -> None:
    """Instance runtime: the same mixed async/sync FastAPI app on Cloudlet's tuned runtime
    vs `fastapi run` with its defaults, one core each; medians, ratios, CPU per request."""
    from cloudlet.bench import runtime as bench

    options = bench.Options(
        rounds=rounds,
        duration=duration,
        warmup=warmup,
        connections=connections,
        sync_ms=sync_ms,
        threadpools=tuple(threadpool or ()),
        routed=routed,
        quick=quick,
        results_dir=results_dir,
        markdown=markdown,
    )
    _run("runtime", bench.run, options)
