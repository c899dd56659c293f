"""What the app's workers report back: one dataclass message per result.

Workers run in threads and never touch a widget; they post one of these and the app's
``on_<message>`` handler (in :mod:`inittui.tui.jobs`) shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from inittui.core.loading import LoadedModel
from inittui.core.stats import TensorStats
from inittui.core.tree import ModelTree
from inittui.tui.session import PlanState, Preview

StatsTable = dict[str, TensorStats | None]
"""Statistics per parameter name (None where a tensor has no values)."""


@dataclass
class ModelLoaded(Message):
    """The model is built, its tree walked and the plan given on the command line resolved
    (or refused: ``plan_error``)."""

    loaded: LoadedModel
    tree: ModelTree
    state: PlanState
    plan_error: str | None


@dataclass
class StatsReady(Message):
    """Statistics of the current weights."""

    stats: StatsTable


@dataclass
class PlannedStatsReady(Message):
    """Statistics of the weights ``state``'s plan gives (computed on a copy)."""

    state: PlanState
    stats: StatsTable


@dataclass
class PlanResolved(Message):
    """A changed plan, resolved: it becomes the current one."""

    state: PlanState


@dataclass
class PreviewReady(Message):
    """A preview of the current and planned weights, run for ``state``'s plan."""

    preview: Preview
    state: PlanState


@dataclass
class DeviceMoved(Message):
    """The model now lives on another device (its tree walked again)."""

    loaded: LoadedModel
    tree: ModelTree


@dataclass
class Progress(Message):
    """Progress of a worker; a queued one is replaced by the next of the same job."""

    job: str
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Progress) and message.job == self.job
