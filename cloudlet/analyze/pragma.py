"""The developer's override: `# sync-ok` (optionally `# sync-ok: reason`).

On the blocking line it silences that call; on a call site it silences the path through that
call (an unmarked sibling call to the same helper is still reported); on a `def` line (or
anywhere in a multi-line signature) it covers the whole function and everything it calls.
`# noqa: ASYNC210` (ruff's codes) or `# noqa: CLB101` (ours) count as well.
"""

from __future__ import annotations

from cloudlet.analyze.facts import FunctionFacts, ModuleFacts


def silences_lines(module: ModuleFacts, first: int, last: int) -> bool:
    lines = module.pragma_lines
    if not lines:
        return False
    if first == last:
        return first in lines
    return any(line in lines for line in range(first, last + 1))


def silences_function(module: ModuleFacts, fn: FunctionFacts) -> bool:
    return silences_lines(module, fn.line, fn.header_end)
