"""The pure renderers: valid Kubernetes objects, correct FreeSWITCH XML, no secret in a ConfigMap."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
from callmesh.operator import freeswitch as fs
from callmesh.operator.apply import CHILD_KINDS
from callmesh.operator.render import RenderOptions, generated_secrets, render_tenant

from callmesh.api import Tenant

# The chart's Chart.yaml claims these Kubernetes versions.
K8S_VERSIONS = ["1.30.0", "1.33.0", "1.35.0"]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_object_is_valid_kubernetes(tenant: Tenant, version: str) -> None:
    objects = render_tenant(tenant) + generated_secrets(tenant, set(), lambda: "pw")
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_children_are_owned_and_labelled(tenant: Tenant) -> None:
    for obj in render_tenant(tenant):
        meta = obj["metadata"]
        assert meta["namespace"] == "tenant-a"
        assert meta["ownerReferences"][0]["kind"] == "ContactCenter"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "callmesh-operator"
        assert meta["labels"]["app.kubernetes.io/instance"] == "center"


def test_configmaps_hold_no_secret_values(tenant: Tenant) -> None:
    password = "s3cr3t-value-never-in-a-configmap"
    secrets = generated_secrets(tenant, set(), lambda: password)
    assert len(secrets) == 3  # ESL + two agents
    for cm in by_kind(render_tenant(tenant), "ConfigMap"):
        for text in cm["data"].values():
            assert password not in text
            assert "ClueCon" not in text


def test_freeswitch_xml_parses_and_routes_each_did_to_callcontrol(tenant: Tenant) -> None:
    (cm,) = [
        c
        for c in by_kind(render_tenant(tenant), "ConfigMap")
        if c["metadata"]["name"] == "center-freeswitch"
    ]
    files = {k: ET.fromstring(v) for k, v in cm["data"].items()}
    assert set(files) == set(fs.CONFIG_PATHS)
    public = files["dialplan-public.xml"]
    (ext,) = [e for e in public.iter("extension") if e.get("name", "").startswith("did-")]
    cond = ext.find("condition")
    assert cond is not None and cond.get("expression") == r"^\+?4930555010$"
    actions = [(a.get("application"), a.get("data")) for a in cond.iter("action")]
    assert ("set", "callmesh_flow=main") in actions
    assert actions[-2:] == [("socket", "$${callcontrol_socket} async full"), ("park", "")]
    vars_text = cm["data"]["vars.xml"]
    assert "callcontrol_socket=center-callcontrol.tenant-a.svc.cluster.local:8084" in vars_text
    assert "esl_password=$CALLMESH_ESL_PASSWORD" in vars_text


def test_directory_has_one_user_per_agent_with_secret_password(tenant: Tenant) -> None:
    root = ET.fromstring(fs.directory_xml(tenant))
    users = {u.get("id"): u for u in root.iter("user")}
    assert set(users) == {"1001", "1002"}
    password = users["1001"].find("params/param[@name='password']")
    assert password is not None and password.get("value") == "$${agent_1001_password}"


def test_gateway_credentials_come_from_the_referenced_secret(tenant: Tenant) -> None:
    root = ET.fromstring(fs.sofia_conf(tenant))
    gateway = root.find(".//profile[@name='external']/gateways/gateway[@name='carrier-1']")
    assert gateway is not None
    params = {p.get("name"): p.get("value") for p in gateway.iter("param")}
    assert params["username"] == "$${trunk_carrier_1_username}"
    assert params["proxy"] == "sip.carrier.example.net:5060"
    (sts,) = by_kind(render_tenant(tenant), "StatefulSet")
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["CALLMESH_TRUNK_CARRIER_1_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "carrier-credentials", "key": "password"}
    assert (
        env["CALLMESH_AGENT_1002_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
        == "center-agent-bob-2"
    )


def test_config_change_rolls_the_pods_and_unchanged_input_renders_identically(
    tenant: Tenant, tenant_yaml: str, load_tenant: Callable[[str], Tenant]
) -> None:
    first = render_tenant(tenant)
    assert first == render_tenant(load_tenant(tenant_yaml))
    changed = load_tenant(tenant_yaml.replace('extension: "1002"', 'extension: "1003"'))
    sts_hash = [
        o["spec"]["template"]["metadata"]["annotations"]["callmesh.io/config-hash"]
        for objs in (first, render_tenant(changed))
        for o in by_kind(objs, "StatefulSet")
    ]
    assert sts_hash[0] != sts_hash[1]


def test_host_network_requires_spreading_and_load_balancer_exposes_sip_and_rtp(
    tenant: Tenant, tenant_yaml: str, load_tenant: Callable[[str], Tenant]
) -> None:
    (sts,) = by_kind(render_tenant(tenant), "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert "requiredDuringSchedulingIgnoredDuringExecution" in pod["affinity"]["podAntiAffinity"]
    assert len(by_kind(render_tenant(tenant), "Service")) == 3  # headless + router + callcontrol

    exposure = "  timeZone: Europe/Berlin\n  freeswitch:\n    exposure: {mode: loadBalancer}"
    lb = load_tenant(tenant_yaml.replace("  timeZone: Europe/Berlin", exposure))
    objects = render_tenant(lb, RenderOptions(external_address="203.0.113.7"))
    (sip,) = [s for s in by_kind(objects, "Service") if s["metadata"]["name"] == "center-sip"]
    assert sip["spec"]["type"] == "LoadBalancer"
    udp_ports = {p["port"] for p in sip["spec"]["ports"] if p["protocol"] == "UDP"}
    assert {5060, 5080, 16384, 16483} <= udp_ports
    (cm,) = [
        c for c in by_kind(objects, "ConfigMap") if c["metadata"]["name"] == "center-freeswitch"
    ]
    assert "ext_sip_ip=203.0.113.7" in cm["data"]["vars.xml"]


def test_network_policies_default_deny_then_allow_the_call_path(tenant: Tenant) -> None:
    policies = {
        p["metadata"]["name"]: p["spec"] for p in by_kind(render_tenant(tenant), "NetworkPolicy")
    }
    assert policies["center-default-deny"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policies["center-default-deny"]
    router_in = policies["center-router"]["ingress"][0]
    assert router_in["ports"] == [{"protocol": "TCP", "port": 50051}]
    callcontrol_in = policies["center-callcontrol"]["ingress"][0]
    assert (
        callcontrol_in["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        == "freeswitch"
    )
    assert "center-dialer" not in policies  # no campaign, no dialer


def test_existing_secrets_are_never_regenerated(tenant: Tenant) -> None:
    names = {s["metadata"]["name"] for s in generated_secrets(tenant, set(), lambda: "x")}
    assert names == {"center-esl", "center-agent-alice", "center-agent-bob-2"}
    assert generated_secrets(tenant, names, lambda: "x") == []


def test_worker_args_are_what_the_worker_commands_accept(tenant: Tenant) -> None:
    """Every rendered worker container starts: the real CLI knows its command and options."""
    from pathlib import Path

    from typer.testing import CliRunner

    from callmesh.api.validate import load_tenants
    from callmesh.cli import app

    examples = Path(__file__).resolve().parents[3] / "examples"
    objects = render_tenant(tenant)
    for example in load_tenants([examples / "acme-insurance"]).values():
        objects += render_tenant(example)  # it has a campaign, so a dialer
    assert {d["metadata"]["name"] for d in by_kind(objects, "Deployment")} >= {"acme-dialer"}
    for deployment in by_kind(objects, "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        # --help is eager: it exits 0 only after every option before it was recognised
        result = CliRunner().invoke(app, [*container["args"], "--help"])
        assert result.exit_code == 0, f"{container['args']}: {result.output}"


def test_trunk_acl_uses_addresses_and_the_event_socket_is_fenced(
    tenant_yaml: str, load_tenant: Callable[[str], Tenant]
) -> None:
    with_cidrs = tenant_yaml.replace(
        "    password: {name: carrier-credentials, key: password}",
        "    password: {name: carrier-credentials, key: password}\n    inboundCidrs: [198.51.100.0/28]",
    )
    root = ET.fromstring(fs.acl_conf(load_tenant(with_cidrs), fs.SwitchContext("cc")))
    trunks = root.find(".//list[@name='trunks']")
    assert trunks is not None and trunks.get("default") == "deny"
    assert [n.get("cidr") for n in trunks] == ["198.51.100.0/28"]  # the host name is not an address
    esl = root.find(".//list[@name='esl']")
    assert esl is not None and {n.get("cidr") for n in esl} >= {"10.0.0.0/8", "127.0.0.0/8"}
    socket = ET.fromstring(fs.event_socket_conf())
    assert socket.find(".//param[@name='apply-inbound-acl']").get("value") == "esl"  # type: ignore[union-attr]


def test_one_router_pod_and_callcontrol_serves_its_socket(tenant: Tenant) -> None:
    deployments = {d["metadata"]["name"]: d for d in by_kind(render_tenant(tenant), "Deployment")}
    router = deployments["center-router"]["spec"]
    assert router["replicas"] == 1 and router["strategy"] == {"type": "Recreate"}
    callcontrol = deployments["center-callcontrol"]["spec"]["template"]["spec"]["containers"][0]
    assert callcontrol["ports"] == [
        {"name": "esl-outbound", "containerPort": 8084, "protocol": "TCP"}
    ]
    assert callcontrol["readinessProbe"]["tcpSocket"] == {"port": "esl-outbound"}
    env = {e["name"] for e in callcontrol["env"]}
    assert {"POD_IP", "CALLMESH_ESL_PASSWORD", "CALLMESH_ROUTER"} <= env


def test_least_privilege_rbac_tokens_and_api_egress_per_worker_role() -> None:
    """The router and the dialer may patch their resources' status, nothing else; the switch
    and callcontrol get no Role and no token; only status writers may reach the API server."""
    from pathlib import Path

    from callmesh.api.validate import load_tenants

    root = Path(__file__).resolve().parents[3]
    tenant = load_tenants([root / "examples" / "acme-insurance"])["acme-insurance"]
    options = RenderOptions(api_server_cidrs=("10.0.0.1/32",), api_server_ports=(443,))
    objects = render_tenant(tenant, options)
    accounts = {o["metadata"]["name"] for o in by_kind(objects, "ServiceAccount")}
    assert accounts == {"acme-freeswitch", "acme-router", "acme-callcontrol", "acme-dialer"}
    roles = {o["metadata"]["name"]: o["rules"] for o in by_kind(objects, "Role")}
    assert roles == {
        "acme-router": [
            {
                "apiGroups": ["callmesh.io"],
                "resources": ["queues/status", "agentteams/status"],
                "verbs": ["get", "patch"],
            }
        ],
        "acme-dialer": [
            {
                "apiGroups": ["callmesh.io"],
                "resources": ["dialercampaigns/status"],
                "verbs": ["get", "patch"],
            }
        ],
    }
    bindings = {o["metadata"]["name"]: o for o in by_kind(objects, "RoleBinding")}
    assert set(bindings) == set(roles)
    for name, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": name,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": name, "namespace": "acme-insurance"}
        ]
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in by_kind(objects, "Deployment") + by_kind(objects, "StatefulSet")
    }
    tokens = {name: spec["automountServiceAccountToken"] for name, spec in pods.items()}
    assert tokens == {
        "acme-freeswitch": False,
        "acme-router": True,
        "acme-callcontrol": False,
        "acme-dialer": True,
    }
    for name, spec in pods.items():
        assert spec["serviceAccountName"] == name
        if name != "acme-freeswitch":
            (env,) = [e for e in spec["containers"][0]["env"] if e["name"] == "CALLMESH_NAMESPACE"]
            assert env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    api = {
        "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }
    egress = {
        p["metadata"]["name"]: p["spec"].get("egress") for p in by_kind(objects, "NetworkPolicy")
    }
    assert api in egress["acme-router"] and api in egress["acme-dialer"]
    assert api not in egress["acme-callcontrol"]
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSIONS[-1], strict=True)


CAMPAIGN_YAML = """
---
apiVersion: callmesh.io/v1alpha1
kind: DialerCampaign
metadata: {name: renewals, namespace: tenant-a}
spec:
  mode: progressive
  queue: support
  contactList: {configMap: {name: renewals-contacts, key: contacts.csv}}
  callerId: {number: "+4930555010"}
"""


def test_dialer_state_is_on_a_claim_and_one_pod_at_a_time(
    tenant_yaml: str, load_tenant: Callable[[str], Tenant]
) -> None:
    """The dial audit journal (caps, retries, opt-outs, the day's abandon meter) survives a
    rescheduled pod: a ReadWriteOnce claim, mounted by a single Recreate-strategy pod."""
    tenant = load_tenant(tenant_yaml + CAMPAIGN_YAML)
    objects = render_tenant(tenant)
    (claim,) = by_kind(objects, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "center-dialer-state"
    assert claim["metadata"]["ownerReferences"][0]["kind"] == "ContactCenter"
    assert claim["metadata"]["labels"]["app.kubernetes.io/name"] == "dialer"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},  # no class: the cluster default
    }
    # apply_set creates it before the Deployment that mounts it, and never patches it
    assert CHILD_KINDS.index("PersistentVolumeClaim") < CHILD_KINDS.index("Deployment")
    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    dialer = deployments["center-dialer"]["spec"]
    assert dialer["replicas"] == 1 and dialer["strategy"] == {"type": "Recreate"}
    pod = dialer["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["state"] == {
        "name": "state",
        "persistentVolumeClaim": {"claimName": "center-dialer-state"},
    }
    (container,) = pod["containers"]
    assert {"name": "state", "mountPath": "/var/lib/callmesh"} in container["volumeMounts"]
    assert "/var/lib/callmesh/dialer-audit.jsonl" in container["args"]
    # the other roles keep their state on an emptyDir (a container restart only)
    callcontrol = deployments["center-callcontrol"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "state", "emptyDir": {}} in callcontrol


def test_dialer_state_size_and_class_come_from_the_contact_center(
    tenant_yaml: str, load_tenant: Callable[[str], Tenant]
) -> None:
    spec = "spec:\n  workers:\n    dialer:\n      stateStorageSize: 5Gi\n"
    spec += "      stateStorageClass: fast-ssd\n"
    tenant = load_tenant(tenant_yaml.replace("spec:\n", spec, 1) + CAMPAIGN_YAML)
    (claim,) = by_kind(render_tenant(tenant), "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(claim, version, strict=True)


def test_no_campaign_no_dialer_claim(tenant: Tenant) -> None:
    """Without campaigns there is no dialer, so no claim: apply_set deletes a leftover one."""
    assert by_kind(render_tenant(tenant), "PersistentVolumeClaim") == []
