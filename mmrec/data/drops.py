"""How rows dropped while cleaning are summarised in an error: counts by reason, with examples."""

from __future__ import annotations


def describe_drops(dropped: dict[str, int], examples: dict[str, list[str]]) -> str:
    """"bad_timestamp: 3 (e.g. u1/a, u2/b); k_core: 1 (e.g. u3/c)", or "nothing" if nothing was dropped."""
    parts = []
    for reason, count in dropped.items():
        shown = examples.get(reason, [])[:2]
        parts.append(f"{reason}: {count:,}" + (f" (e.g. {', '.join(shown)})" if shown else ""))
    return "; ".join(parts) or "nothing"
