"""The standby preview child: started once the app has opened a big model, it imports
torch and builds the same model at low priority (``nice`` :data:`STANDBY_NICE`) before
anyone asks for a preview; ``p`` then only sends the plan and the inputs
(:class:`~inittui.tui.job_process.PreviewRequest`) and reads the progress and the result,
as from a one-shot :class:`~inittui.tui.job_process.PreviewChild` (whose build runs at
the app's priority, as the user waits for it). It serves one preview
after another, each on its model as built (``Pristine``: tensors and random generators
put back first), so every preview equals a fresh child's bit for bit.

Where it cannot serve (dead, could not build, asked for another model), :meth:`run`
raises :class:`StandbyUnavailable` and the app runs the preview the one-shot way.

No textual import here (the app's side of it is in :mod:`inittui.tui.preview_jobs`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inittui.core.errors import CancelledError, InittuiError
from inittui.tui.job_process import (
    ChildProcess,
    ModelSpec,
    PreviewFailed,
    PreviewRequest,
    Unbuilt,
)

STANDBY_NICE = 10
"""How much lower than the app's the priority of the standby child's build thread is: the
import of torch and the build (seconds of Python on a 10,000-module model) yield the CPU
to the app and its keys. The previews run in the child's main thread at the app's
priority (a nice thread could not raise its priority back): a preview asked for is not
slowed by a loaded machine more than the app is."""


class StandbyUnavailable(Exception):
    """The standby child cannot serve this preview: run it another way."""

    def __init__(self, why: str, unbuildable: bool = False) -> None:
        super().__init__(why)
        self.unbuildable = unbuildable  # it could not build the model: no use restarting it


class StandbyChild(ChildProcess):
    """A child that builds ``spec``'s model now and serves previews on it later."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec, reuse=True, nice=STANDBY_NICE)

    @property
    def ready(self) -> bool:
        """Built and waiting (reads the child's ``ready`` message; not during a run)."""
        return self.poll_built() is True and self.is_alive()

    def run(
        self,
        request: PreviewRequest,
        cancel: Callable[[], bool],
        progress: Callable[[int, int], None],
    ) -> Any:
        """The preview of ``request`` on this child's model (waits for the build if it is
        still running). :class:`StandbyUnavailable` where the child cannot serve it: dead
        before a word on this request, could not build or put its model back, built for
        another model. A failing preview raises :class:`PreviewFailed` and keeps the child;
        a cancelled one ends it."""
        if request.spec != self.spec:
            raise StandbyUnavailable("built for another model")
        if self.poll_built() is False or not self.is_alive():
            raise StandbyUnavailable("not running", unbuildable=self.built is False)
        heard = [False]

        def heard_progress(done: int, total: int) -> None:
            heard[0] = True
            progress(done, total)

        self.submit(request)
        try:
            return self.wait(cancel, heard_progress)
        except Unbuilt as exc:
            raise StandbyUnavailable(str(exc), unbuildable=True) from exc
        except CancelledError:
            self.kill()
            raise
        except PreviewFailed:
            raise
        except InittuiError as exc:  # it died: before any progress, try another child
            self.kill()
            if not heard[0]:
                raise StandbyUnavailable(str(exc)) from exc
            raise
