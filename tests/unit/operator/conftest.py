"""A small tenant for renderer tests, independent of examples/."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from callmesh.api import KIND_BY_NAME, Tenant, group_by_namespace

TENANT_YAML = """
apiVersion: callmesh.io/v1alpha1
kind: ContactCenter
metadata: {name: center, namespace: tenant-a, uid: 0b5c6a4e-1111-2222-3333-444455556666}
spec:
  sipDomain: tenant-a.voice.example.com
  timeZone: Europe/Berlin
  trunks:
  - name: carrier-1
    host: sip.carrier.example.net
    username: {name: carrier-credentials, key: username}
    password: {name: carrier-credentials, key: password}
  numbers:
  - {did: "+4930555010", flow: main}
---
apiVersion: callmesh.io/v1alpha1
kind: Queue
metadata: {name: support, namespace: tenant-a}
spec:
  tiers: [{level: 1, teams: [team-1]}]
---
apiVersion: callmesh.io/v1alpha1
kind: AgentTeam
metadata: {name: team-1, namespace: tenant-a}
spec:
  agents:
  - {id: alice, name: Alice, extension: "1001", skills: [{name: support, level: 7}]}
  - {id: bob_2, name: Bob, extension: "1002"}
---
apiVersion: callmesh.io/v1alpha1
kind: IVRFlow
metadata: {name: main, namespace: tenant-a}
spec:
  entry: q
  nodes:
  - {id: q, type: queue, queue: {queue: support}}
"""


def load(text: str) -> Tenant:
    objects = [KIND_BY_NAME[doc["kind"]].model_validate(doc) for doc in yaml.safe_load_all(text)]
    (tenant,) = group_by_namespace(objects).values()
    return tenant


@pytest.fixture
def tenant_yaml() -> str:
    return TENANT_YAML


@pytest.fixture
def load_tenant() -> Callable[[str], Tenant]:
    return load


@pytest.fixture
def tenant() -> Tenant:
    return load(TENANT_YAML)
