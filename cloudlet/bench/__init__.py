"""Benchmarks that run Cloudlet and its competitors side by side and print ratios.

Each benchmark module exposes ``run(...)`` and is wired into ``cloudlet bench`` by
:mod:`cloudlet.bench.cli`. Results go to ``bench/results/<name>-<timestamp>.json``.
"""
