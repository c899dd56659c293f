"""What the module tree's markers mean: the legend the help screen (F1), the ``?`` overlay
and the README show (all three read :data:`TREE_LEGEND`). Each row says it in words, so it
reads the same without colour."""

from __future__ import annotations

TREE_LEGEND: tuple[tuple[str, str], ...] = (
    ("▶ / ▼", "A collapsed / expanded module (enter, space, → ←)"),
    ("kaiming_normal", "The scheme that decides this module's parameters, set on it"),
    ("scheme·type", "…decided by a type rule (type:Linear)"),
    ("scheme·tree", "…decided by a rule on an ancestor's subtree or a path glob"),
    ("scheme+N", "N more schemes decide other parameters here (the detail lists them)"),
    ("no scheme shown", "Unplanned: the parameters keep the values the model made"),
    ("= path (shared)", "The same module object as path (tied); plan it there"),
    ("!", "A flag: NaN/Inf or exploding std (error), vanishing std or a lint (warning)"),
    ("i", "A note: a padding row kept at zero, an info lint"),
    ("•", "A collapsed module with a flag somewhere below it"),
    ("4.2K", "Right column: parameters in the module and below (K 1e3, M 1e6, B 1e9)"),
    (
        "colours",
        "Only repeat the text: class cyan, scheme green (bold when set here), "
        "errors red, warnings yellow, notes cyan, origin and counts dim",
    ),
)
"""``(marker, what it means)`` rows, in the order the help screen lists them."""
