"""The Helm chart: linted and rendered by a real helm, every object valid Kubernetes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "callmesh"
HELM = shutil.which("helm") or str(ROOT / ".venv" / "bin" / "helm")
K8S_VERSIONS = ["1.30.0", "1.33.0", "1.35.0"]

needs_helm = pytest.mark.skipif(
    not Path(HELM).exists(), reason="helm is installed by scripts/setup.sh test"
)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HELM, *args], capture_output=True, text=True, check=check, timeout=120)


def template(*sets: str) -> list[dict[str, Any]]:
    args = ["template", "cm", str(CHART), "--namespace", "callmesh-system", "--include-crds"]
    for item in sets:
        args += ["--set", item]
    out = helm(*args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@needs_helm
def test_chart_lints_strictly() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    "sets",
    [
        (),
        (
            "watchNamespaces={acme-insurance,globex-telecom}",
            "replicaCount=2",
            "webhook.enabled=false",
        ),
    ],
    ids=["defaults", "namespaced-ha-no-webhook"],
)
@pytest.mark.parametrize("version", K8S_VERSIONS)
@needs_helm
def test_rendered_objects_are_valid_kubernetes(sets: tuple[str, ...], version: str) -> None:
    objects = template(*sets)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= kinds
    crds = {
        c["spec"]["names"]["kind"]: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for c in objects
        if c["kind"] == "CustomResourceDefinition"
    }
    for obj in objects:
        if obj["kind"] in crds:  # a custom resource: checked against the chart's own CRD
            jsonschema.validate({k: v for k, v in obj.items() if k == "status"}, crds[obj["kind"]])
            continue
        kubernetes_validate.validate(obj, version, strict=True)


@needs_helm
def test_namespaces_and_peering_reach_the_operator_args() -> None:
    (deployment,) = [
        o for o in template("watchNamespaces={a,b}", "replicaCount=2") if o["kind"] == "Deployment"
    ]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "operator"
    assert "--namespace=a" in args and "--namespace=b" in args and "--peering" in args
    assert "--all-namespaces" not in args


@needs_helm
def test_webhook_args_match_the_operator_command() -> None:
    """Every operator option the chart passes exists on `callmesh operator`."""
    from typer.testing import CliRunner

    from callmesh.cli import app

    (deployment,) = [
        o for o in template("webhook.certSecret=callmesh-webhook-tls") if o["kind"] == "Deployment"
    ]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--webhook-service=cm-callmesh-webhook" in args
    assert "--webhook-cert-dir=/etc/callmesh/webhook" in args
    help_text = CliRunner().invoke(app, ["operator", "--help"], terminal_width=200).output
    for arg in args[1:]:
        assert arg.split("=", 1)[0] in help_text, arg
    volumes = {v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes == {"tmp", "webhook-cert"}


@needs_helm
def test_unknown_values_are_rejected_by_the_schema() -> None:
    result = helm("template", "cm", str(CHART), "--set", "replicas=2", check=False)
    assert result.returncode != 0
    assert "additional properties" in result.stderr.lower() or "replicas" in result.stderr


def test_every_value_is_documented() -> None:
    """Each key the schema declares has a comment above it in values.yaml."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    declared = {(key,) for key in schema["properties"]}
    declared |= {
        (key, sub)
        for key, prop in schema["properties"].items()
        for sub in prop.get("properties", {})
    }
    path: list[str] = []
    documented = set()
    for i, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z]\w*):", line)
        if not match:
            continue
        depth = len(match.group(1)) // 2
        path = [*path[:depth], match.group(2)]
        if lines[i - 1].strip().startswith("#"):
            documented.add(tuple(path))
    missing = sorted(declared - documented)
    assert missing == [], f"values.yaml keys without a comment: {missing}"


@needs_helm
def test_cluster_role_grants_only_what_the_operator_uses() -> None:
    (role,) = [o for o in template() if o["kind"] == "ClusterRole"]
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert "*" not in verbs and "escalate" not in verbs and "bind" not in verbs
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert "*" not in resources
    secret_rules = [rule for rule in role["rules"] if "secrets" in rule["resources"]]
    assert all(
        "patch" not in rule["verbs"] and "update" not in rule["verbs"] for rule in secret_rules
    )


def test_chart_crds_are_the_generated_ones() -> None:
    """charts/callmesh/crds is `callmesh crds --output-dir charts/callmesh/crds`, byte for byte."""
    from callmesh.api.commands import drift

    stale = drift(CHART / "crds")
    assert stale == [], (
        f"charts/callmesh/crds differs from the models in {stale} — run "
        "`callmesh crds --output-dir charts/callmesh/crds`"
    )


@needs_helm
def test_chart_installs_the_crds() -> None:
    crds = [o for o in template() if o["kind"] == "CustomResourceDefinition"]
    assert {c["spec"]["names"]["kind"] for c in crds if c["spec"]["group"] == "callmesh.io"} == {
        "ContactCenter",
        "Queue",
        "AgentTeam",
        "IVRFlow",
        "DialerCampaign",
    }


@needs_helm
def test_operator_holds_every_permission_its_tenant_roles_grant() -> None:
    """RBAC escalation prevention: the operator may create a Role only with permissions it
    holds, since the chart gives it neither `escalate` nor `bind`. Check every rule of every
    Role the operator renders for the examples against the chart's ClusterRole."""
    from callmesh.operator.render import render_tenant

    from callmesh.api.validate import load_tenants

    (cluster_role,) = [o for o in template() if o["kind"] == "ClusterRole"]
    held = {
        (group, resource, verb)
        for rule in cluster_role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    granted = set()
    for tenant in load_tenants([ROOT / "examples"]).values():
        for role in (o for o in render_tenant(tenant) if o["kind"] == "Role"):
            granted |= {
                (group, resource, verb)
                for rule in role["rules"]
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            }
    assert ("callmesh.io", "queues/status", "patch") in granted
    assert granted - held == set()
    # and it may manage the Roles and RoleBindings themselves
    for verb in ("create", "patch", "delete"):
        assert ("rbac.authorization.k8s.io", "roles", verb) in held
        assert ("rbac.authorization.k8s.io", "rolebindings", verb) in held


@needs_helm
def test_api_server_values_reach_the_operator_args() -> None:
    (deployment,) = [
        o
        for o in template("apiServer.cidrs={10.0.0.10/32}", "apiServer.ports={443}")
        if o["kind"] == "Deployment"
    ]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--api-server-cidr=10.0.0.10/32" in args and "--api-server-port=443" in args
    assert "--api-server-port=6443" not in args
