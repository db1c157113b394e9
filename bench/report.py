"""The benchmark's result: one Markdown table, ratios first, with the machine, versions and load noted."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    measurement: str
    engine: str
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    intake: str = ""
    peer: str = ""
    note: str = ""
    figure: float | None = None  # the row's main figure as a number, for rows that refer to it


def rate(per_second: float | None) -> str:
    return "—" if per_second is None else f"{per_second:,.1f} msg/s"


def mb(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _met(row: Row) -> str:
    if row.met is None:
        return ""
    return "met" if row.met else "**not met**"


def table(rows: Sequence[Row]) -> str:
    lines = ["| measurement | engine | ratio | target | met? | intake | peer in the same run | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r.ratio is None else f"**{r.ratio:.2f}**"
        lines.append(f"| {r.measurement} | {r.engine} | {ratio} | {r.target} | {_met(r)} | {r.intake} | {r.peer} "
                     f"| {r.note} |")
    return "\n".join(lines)


def document(heading: Sequence[str], rows: Sequence[Row]) -> str:
    return "\n".join([*heading, "", table(rows), ""])
