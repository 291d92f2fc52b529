"""Named points where a test can kill the process with SIGKILL (``kill -9``), to prove crash safety.

The embedding cache and the index writer promise that a process killed at *any* moment leaves nothing
corrupt behind and that rerunning the same command resumes. Killing a subprocess at a random moment
tests only the moments the scheduler happens to pick, so the writers call :func:`kill_point` at the
moments that matter (before the first shard, after the N-th shard, between the files of the final
save). When the environment variable ``LFS_GUI_TEST_KILL_AT`` names that point, the process sends
itself ``SIGKILL``: no ``finally`` block, no ``atexit``, no flush runs, exactly as with ``kill -9``.

``LFS_GUI_TEST_KILL_SIGNAL=INT`` sends ``SIGINT`` instead: Python raises ``KeyboardInterrupt`` there, as
when the user presses Ctrl-C.

Unset (always, outside the tests), a kill point is one dictionary lookup. Point names:

* ``embed:first-batch`` - the first batch is embedded, no shard written yet;
* ``batch:N`` - the N-th batch of this run is embedded and handed to the shard writer (1-based);
* ``shard:N`` - the N-th shard of this run is renamed into place (1-based);
* ``ivf:block:N`` - the N-th block of an IVF build is written to its temporary file (before the merge);
* ``save:embeddings`` - the index's ``embeddings.npy`` is written, nothing else of the final save;
* ``save:before-sidecar`` - every file but ``index.json`` is written.
"""

from __future__ import annotations

import os
import signal

ENV = "LFS_GUI_TEST_KILL_AT"
SIGNAL_ENV = "LFS_GUI_TEST_KILL_SIGNAL"


def kill_point(name: str) -> None:
    """``kill -9`` this process if ``$LFS_GUI_TEST_KILL_AT`` equals ``name`` (see module docstring)."""
    if os.environ.get(ENV) == name:
        sig = signal.SIGINT if os.environ.get(SIGNAL_ENV) == "INT" else getattr(signal, "SIGKILL", signal.SIGTERM)
        os.kill(os.getpid(), sig)
