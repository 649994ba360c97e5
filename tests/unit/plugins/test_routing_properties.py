"""Whatever a vendor's plugin answers, every contact is routed to a real candidate."""

from __future__ import annotations

import random
from typing import Any, ClassVar

from callmesh.plugins import hookimpl
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.isolation import Isolation, PluginFailures
from callmesh.plugins.manager import PluginManager
from callmesh.plugins.testkit import random_request
from hypothesis import given
from hypothesis import strategies as st

from callmesh.acd.strategy import RoutingDecision, RoutingRequest

IDS = st.sampled_from(["agent-0", "agent-1", "agent-5", "agent-11", "ghost", ""])
ANSWERS = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.builds(
        RoutingDecision,
        agent_ids=st.lists(IDS, max_size=3).map(tuple),
        decided_by=st.text(max_size=5),
        reason=st.just("fuzz"),
    ),
    st.just(ValueError("boom")),
)


class Fuzz:
    """Answers whatever the test put in ``answers`` (raising exceptions it finds there)."""

    answers: ClassVar[list[Any]] = []

    @hookimpl
    def callmesh_route_contact(self, request: RoutingRequest) -> Any:
        """Next scripted answer."""
        answer = Fuzz.answers.pop(0) if Fuzz.answers else None
        if isinstance(answer, Exception):
            raise answer
        return answer


CATALOG = PluginCatalog(environ={}, entry_points=[])
CATALOG.add("fuzz", Fuzz, source="tests")
# The circuit breaker off, so every example reaches the validation path.
MANAGER = PluginManager(
    [{"name": "fuzz"}], catalog=CATALOG, isolation=Isolation(PluginFailures(), trip_after=0)
)


@given(answers=st.lists(ANSWERS, min_size=1, max_size=5), seed=st.integers(0, 10_000))
def test_every_contact_is_routed_to_a_candidate(answers: list[Any], seed: int) -> None:
    rng = random.Random(seed)
    for answer in answers:
        Fuzz.answers = [answer]
        request = random_request(rng, strategies=("longest-idle-agent", "round-robin", "nope"))
        decision = MANAGER.route(request)
        assert decision is not None
        assert decision.agent_ids and all(a in request.candidates for a in decision.agent_ids)
        if isinstance(answer, RoutingDecision) and decision.decided_by.startswith("fuzz:"):
            assert decision.agent_ids == answer.agent_ids
