"""Reference tables generated from the code, so the README cannot drift from it (a test
compares them): profile parameters with their readers, and the built-in calculators."""

from __future__ import annotations

from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.params import param_table


def _fmt(value: object) -> str:
    return "null" if value is None else f"`{value}`" if isinstance(value, str) else str(value)


def parameter_table(registry: Registry | None = None) -> str:
    registry = registry or Registry.builtin()
    lines = ["| parameter | default | meaning | read by |", "|---|---|---|---|"]
    for name, default, doc in param_table():
        readers = [f"`{c.id}`" for c in registry if name in c.params]
        lines.append(f"| `{name}` | {_fmt(default)} | {doc} | {', '.join(readers) or '—'} |")
    return "\n".join(lines)


def calculator_table(registry: Registry | None = None) -> str:
    registry = registry or Registry.builtin()
    lines = ["| calculator | version | features | tempo map |", "|---|---|---|---|"]
    for c in registry:
        lines.append(
            f"| `{c.id}` | {c.version} | {', '.join(f'`{f}`' for f in c.feature_names())} "
            f"| {'yes' if c.uses_tempo else 'no'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(parameter_table())
    print()
    print(calculator_table())
