"""The demo's timeline picture: who held which epoch when, and the protocol's events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = [
    "MARKERS",
    "draw",
]

MARKERS = {
    "joined": ("o", "tab:green"),
    "participant_left": ("v", "tab:orange"),
    "manager": ("*", "tab:purple"),
    "ended": ("s", "black"),
    "refused": ("x", "tab:red"),
}


def draw(
    path: Path,
    events: list[tuple[float, str, str, dict[str, Any]]],
    names: list[str],
    people: dict[str, Any],
) -> None:
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(names) + 1.8))
    rows = {n: i for i, n in enumerate(names)}
    colors = plt.get_cmap("tab10")
    spans: dict[str, list[tuple[float, int]]] = {n: [] for n in names}
    end = max((t for t, *_ in events), default=1.0)
    for t, who, kind, detail in events:
        if kind in ("key_installed", "rekeyed") and "epoch" in detail:
            spans[who].append((t, int(detail["epoch"])))
        if kind in ("ended", "left") or kind == "not_admitted":
            spans[who].append((t, -1))
    for who, changes in spans.items():
        for (t0, epoch), (t1, _) in zip(changes, [*changes[1:], (end + 1, -1)], strict=True):
            if epoch >= 0:
                ax.barh(
                    rows[who],
                    t1 - t0,
                    left=t0,
                    height=0.5,
                    color=colors(epoch % 10),
                    edgecolor="white",
                )
                ax.text(t0 + 0.05, rows[who], f"e{epoch}", va="center", fontsize=7, color="white")
    for t, who, kind, _ in events:
        if kind in MARKERS:
            marker, color = MARKERS[kind]
            offset = -0.35 if kind == "refused" else 0.35
            ax.plot(t, rows[who] + offset, marker=marker, color=color, markersize=7)
    for who, a in people.items():
        refused = sum(a.refused.values())
        if refused:
            ax.text(
                end + 0.3,
                rows[who],
                f"{refused} frames refused",
                va="center",
                color="tab:red",
                fontsize=8,
            )
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("seconds")
    ax.set_title(
        "Sealroom demo: media epochs per participant\n"
        "(o join, v leave, * manager change, s end, x frames refused)"
    )
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
