"""`cloudlet bench ...`: one sub-command per benchmark (modules import lazily: they are heavy)."""

from __future__ import annotations

import typer

bench_app = typer.Typer(
    help="Benchmarks: Cloudlet and its competitors side by side, medians and ratios.",
    no_args_is_help=True,
)
