"""The router worker on an example tenant's rendered ConfigMap, plugins included.

``examples/acme-insurance`` enables the memory-crm plugin: the router builds its plugin
manager from ContactCenter.spec.plugins, and a skills-based queue is routed through the
routing hook (the decision in the offer's trace names the strategy and its reason).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc.aio
from callmesh.operator.render import ROUTER, build_worker_configmap
from callmesh.plugins.manager import PluginManager
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.router.server import RouterServer

from callmesh.api.validate import load_tenants

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-insurance"


async def test_example_tenant_routes_through_its_plugin_manager(tmp_path: Path) -> None:
    (tenant,) = load_tenants([EXAMPLE]).values()
    path = tmp_path / "tenant.yaml"
    path.write_text(build_worker_configmap(tenant, ROUTER)["data"]["tenant.yaml"])
    server = RouterServer(path, address="127.0.0.1:0", reload_interval=0)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        assert server.core is not None
        assert isinstance(server.core.policy, PluginManager)
        assert "memory-crm" in [p.name for p in server.core.policy.plugins]
        stub = router_pb2_grpc.RouterServiceStub(channel)
        sessions = {}
        for agent in ("rhayes", "lnakamura"):
            call = stub.AgentSession()
            await call.write(
                router_pb2.AgentSessionRequest(
                    login=router_pb2.AgentLogin(agent_id=agent, ready=True)
                )
            )
            assert (await call.read()).WhichOneof("event") == "state"
            sessions[agent] = call
        reply = await stub.Enqueue(
            router_pb2.EnqueueRequest(
                contact_id="claim-1",
                queue="claims",
                skills=[router_pb2.SkillRequirement(name="claims-home", min_level=5)],
            )
        )
        # skills-best-match: lnakamura has claims-home 9, rhayes 5.
        assert list(reply.offered_agent_ids) == ["lnakamura"]
        event = await asyncio.wait_for(sessions["lnakamura"].read(), 10)
        decision = event.offer.trace[-1]
        assert decision.decided_by == "skills-best-match" and not decision.fallback
        assert decision.reason
        server.core.check_invariants()
    finally:
        await channel.close()
        await server.stop(0)
