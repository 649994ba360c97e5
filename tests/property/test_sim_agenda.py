"""The simulator's event list pops events in (time, kind, sequence) order, in both builds.

``_Agenda`` is the heap the compiled build uses (native objects compared on their C
fields; one kind, the arrivals, in a heap of its own), ``_TupleAgenda`` the pure build's
``heapq`` of tuples; whichever build runs this
test, both must give exactly the order of sorting the keys, since a run's records depend
on it (ties in time are common: same-instant timers, and every kind at a shift start).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from callmesh.sim.simulator import _Agenda, _TupleAgenda

# (push: time, kind) or None (pop); few distinct times so that ties are the rule
_step = st.one_of(
    st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.5, 1e9]), st.integers(0, 8)), st.none()
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_step, max_size=120))
def test_both_event_lists_pop_in_key_order(steps: list[tuple[float, int] | None]) -> None:
    # _Agenda(3): kind 3 waits in its own heap (the run's arrivals do)
    for agenda in (_Agenda(), _Agenda(3), _TupleAgenda()):
        pending: list[tuple[float, int, int]] = []
        popped: list[tuple[float, int, int, object, object]] = []
        expected: list[tuple[float, int, int]] = []
        seq = 0
        for step in [*steps, *[None] * len(steps)]:
            if step is not None:
                seq += 1
                agenda.push(step[0], step[1], f"a{seq}", seq)
                pending.append((step[0], step[1], seq))
            elif not agenda.empty():
                first = min(pending)
                pending.remove(first)
                expected.append(first)
                popped.append(agenda.pop())
        assert agenda.empty() and not pending
        assert [(t, k, s) for t, k, s, _, _ in popped] == expected
        assert all(a == f"a{s}" and b == s for _, _, s, a, b in popped)
