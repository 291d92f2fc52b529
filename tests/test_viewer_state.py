"""The viewer's state model is Qt-free: a script (or a notebook) drives the same state the widgets
observe, with a real session, and Qt is never imported."""

import subprocess
import sys

DRIVE = r'''
import sys
import numpy as np
from lfs_gui.session import Session
from lfs_gui.viewer_state import QueryRef, ViewerState

state = ViewerState()
events = []
for name in ("sessionChanged", "queryChanged", "retrievalsChanged", "targetChanged", "explanationChanged",
             "explainSettingsChanged", "viewSettingsChanged", "kChanged"):
    getattr(state, name).connect(lambda value, name=name: events.append(name))

# What the app's controller does, as plain callbacks: query -> retrieve, pair/settings -> explain.
def on_query(q):
    r = state.session.retrieve(q.key, k=state.k) if q is not None else None
    state.set_retrievals(r)
    if r is not None:
        state.set_target(r.similar[0].id)

def on_pair(*_):
    s = state.explain
    state.set_explanation(state.session.explain(state.query.key, state.target, s.method, **s.kwargs()))

state.queryChanged.connect(on_query)
state.targetChanged.connect(on_pair)
state.explainSettingsChanged.connect(on_pair)

session = Session.open_demo()
state.set_session(session)
item = session.gallery.items[3]
state.set_query(QueryRef(id=3, path=item.path, label=item.label, class_name=item.class_name))
assert state.retrievals.query_id == 3 and len(state.retrievals.similar) == state.k
top = state.retrievals.similar[0].id
assert state.target == top
ref = session.explain(3, top, "explainlfs", xi1=0.3, xi2=0.7, p=0.3)
np.testing.assert_array_equal(state.explanation.heat2, ref.heat2)
np.testing.assert_array_equal(state.explanation.mask2, ref.heat2 > 0.7)

n = len(events)
state.update_explain(xi2=0.7)            # no change: no event
state.set_query(QueryRef(id=3, path=item.path))  # the same query: no event
state.update_view(opacity=0.5)           # the default: no event
assert len(events) == n, events[n:]
state.update_explain(xi2=0.5)            # a change: settings event, then the re-explained pair
assert events[n:] == ["explainSettingsChanged", "explanationChanged"], events[n:]
np.testing.assert_array_equal(state.explanation.mask2, state.explanation.heat2 > 0.5)
state.update_view(mask_only=True)
assert state.view.mask_only and events[-1] == "viewSettingsChanged"
state.set_session(None)
assert state.query is None and state.target is None and state.explanation is None

qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph"))
assert not qt, qt
print("ok", len(events))
'''


def test_viewer_state_is_driven_without_qt():
    res = subprocess.run([sys.executable, "-c", DRIVE], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok")
