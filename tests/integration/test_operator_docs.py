"""docs/operator.md, run: every command and manifest in it, in order, against the real tools.

- ``helm ...``: the real helm 4 binary, ``helm lint`` as written and ``helm install`` /
  ``helm upgrade`` as ``helm template`` with the same release, chart, namespace and values
  (no cluster here); ``helm uninstall`` must name a release the guide installed.
- ``callmesh ...``: the real CLI.
- ``kubectl ...``: the API requests kubectl sends for it (create, merge patch, delete, list,
  get), made over HTTP to the Kubernetes API stand-in while the real operator runs against it.
  ``kubectl get`` output is rebuilt from the CRDs' printer columns, as the API server's table
  conversion does, and compared with the output printed in the guide; ``-o jsonpath`` is
  evaluated for the expressions the guide uses.
- every YAML manifest is merged into the example object its first-line comment names and
  validated with ``callmesh validate`` and rendered with ``callmesh render``.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from callmesh.api.commands import drift
from callmesh.api.crd import all_crds
from callmesh.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operator.md"
HELM = ROOT / ".venv" / "bin" / "helm"


def _load(name: str, file: str) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


operator_tests = _load("callmesh_operator_tests", "test_operator.py")
cluster = operator_tests.cluster  # the fixture: the stand-in with the real operator running
Cluster = operator_tests.Cluster


# --- the guide's blocks ------------------------------------------------------------------------


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return [(m[1], m[2]) for m in re.finditer(r"```(\w+)\n(.*?)```", text, re.S)]


def command_lines(body: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", body)
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


# --- kubectl's view of the stand-in ------------------------------------------------------------

CRDS = {crd["spec"]["names"]["plural"]: crd for crd in all_crds().values()}
NAMES: dict[str, str] = {}
for _plural, _crd in CRDS.items():
    _names = _crd["spec"]["names"]
    for _alias in (_plural, _names["singular"], _names["kind"].lower(), *_names["shortNames"]):
        NAMES[_alias] = _plural
CORE = {
    "secret": ("secrets", "/api/v1"),
    "secrets": ("secrets", "/api/v1"),
    "configmap": ("configmaps", "/api/v1"),
    "configmaps": ("configmaps", "/api/v1"),
    "services": ("services", "/api/v1"),
    "statefulsets": ("statefulsets", "/apis/apps/v1"),
    "deployments": ("deployments", "/apis/apps/v1"),
}


def jsonpath(obj: Any, expr: str) -> str:
    """The subset of kubectl's JSONPath the guide and the printer columns use."""
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    values: list[Any] = [obj]
    for part in re.findall(r'\.[A-Za-z0-9_-]+|\[\?\(@\.\w+==\"[^"]*\"\)\]', expr):
        if part.startswith("."):
            values = [v.get(part[1:]) for v in values if isinstance(v, dict)]
            values = [v for v in values if v is not None]
        else:
            key, want = re.match(r'\[\?\(@\.(\w+)=="([^"]*)"\)\]', part).groups()  # type: ignore[union-attr]
            values = [
                item
                for v in values
                if isinstance(v, list)
                for item in v
                if isinstance(item, dict) and item.get(key) == want
            ]
    return " ".join(str(v) for v in values)


def table(objects_by_plural: list[tuple[str, list[dict[str, Any]]]]) -> str:
    """``kubectl get a,b,c`` output: one table per type, columns padded by 3 as kubectl does."""
    out = []
    several = len(objects_by_plural) > 1
    for plural, objects in objects_by_plural:
        crd = CRDS[plural]
        columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        kind = crd["spec"]["names"]["kind"].lower()
        rows = [["NAME", *(c["name"].upper() for c in columns)]]
        for obj in sorted(objects, key=lambda o: o["metadata"]["name"]):
            name = obj["metadata"]["name"]
            cells = [f"{kind}.{crd['spec']['group']}/{name}" if several else name]
            for column in columns:
                cells.append("2m" if column["name"] == "Age" else jsonpath(obj, column["jsonPath"]))
            rows.append(cells)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "".join(
                cell.ljust(widths[i] + 3) if i < len(row) - 1 else cell
                for i, cell in enumerate(row)
            ).rstrip()
            for row in rows
        ]
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


class Kubectl:
    """Turns the guide's kubectl commands into the requests kubectl makes to the stand-in."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.api = cluster.api
        self.namespaces: set[str] = set()

    async def run(self, argv: list[str]) -> str:
        args = list(argv[1:])
        ns = "default"
        for flag in ("-n", "--namespace"):
            if flag in args:
                i = args.index(flag)
                ns = args[i + 1]
                del args[i : i + 2]
        verb, rest = args[0], args[1:]
        if verb == "create" and rest[0] == "namespace":
            self.namespaces.add(rest[1])
            return ""
        if verb == "create" and rest[0] == "secret":
            assert rest[1] == "generic"
            data = {}
            for arg in rest[3:]:
                key, value = arg.removeprefix("--from-literal=").split("=", 1)
                data[key] = base64.b64encode(value.encode()).decode()
            await self.cluster.create(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": rest[2], "namespace": ns},
                    "data": data,
                }
            )
            return ""
        if verb == "create" and rest[0] == "configmap":
            files = [ROOT / a.removeprefix("--from-file=") for a in rest[2:]]
            await self.cluster.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": rest[1], "namespace": ns},
                    "data": {f.name: f.read_text() for f in files},
                }
            )
            return ""
        if verb in ("apply", "delete") and "-f" in rest:
            path = ROOT / rest[rest.index("-f") + 1]
            if path.resolve().parent == (ROOT / "charts" / "callmesh").resolve():
                assert path.name == "crds"
            if "crds" in path.parts:
                # the CRDs kubectl would send: the generated ones, each a valid CRD document
                assert drift(path) == [], f"{path} is not what `callmesh crds` generates"
                for file in sorted(path.glob("*.yaml")):
                    doc = yaml.safe_load(file.read_text())
                    assert doc["kind"] == "CustomResourceDefinition", file
                return ""
            files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
            docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
            for doc in docs:
                await (self._apply(doc) if verb == "apply" else self._delete(doc))
            return ""
        if verb == "patch":
            plural, name = NAMES[rest[0]], rest[1]
            assert "--type=merge" in rest, "the guide's patches are merge patches"
            body = json.loads(rest[rest.index("-p") + 1])
            await self.cluster.patch(f"{self._base(plural, ns)}/{name}", body)
            return ""
        if verb == "get":
            return self._get(rest, ns)
        raise AssertionError(f"the test does not know how to run: {shlex.join(argv)}")

    def _base(self, plural: str, ns: str) -> str:
        root = CORE[plural][1] if plural in CORE else "/apis/callmesh.io/v1alpha1"
        return f"{root}/namespaces/{ns}/{CORE[plural][0] if plural in CORE else plural}"

    async def _apply(self, doc: dict[str, Any]) -> None:
        ns = doc["metadata"].get("namespace", "default")
        plural = NAMES[doc["kind"].lower()]
        if self.api.find(plural, ns, doc["metadata"]["name"]) is None:
            await self.cluster.create(doc)
        else:  # kubectl apply of a changed object: its fields replace the live ones
            await self.cluster.patch(
                f"{self._base(plural, ns)}/{doc['metadata']['name']}", {"spec": doc["spec"]}
            )

    async def _delete(self, doc: dict[str, Any]) -> None:
        ns = doc["metadata"].get("namespace", "default")
        plural = NAMES[doc["kind"].lower()]
        await self.cluster.delete(f"{self._base(plural, ns)}/{doc['metadata']['name']}")

    def _get(self, rest: list[str], ns: str) -> str:
        output = None
        if "-o" in rest:
            i = rest.index("-o")
            output = rest[i + 1]
            del rest[i : i + 2]
        selector = None
        if "-l" in rest:
            i = rest.index("-l")
            selector = dict(kv.split("=", 1) for kv in rest[i + 1].split(","))
            del rest[i : i + 2]
        types = rest[0].split(",")
        if output and output.startswith("jsonpath="):
            (kind,) = types
            plural = NAMES.get(kind) or CORE[kind][0]
            obj = self.api.find(plural, ns, rest[1])
            assert obj is not None, f"{kind} {rest[1]} not found"
            return jsonpath(obj, output.removeprefix("jsonpath="))
        if all(t in NAMES for t in types):
            return table([(NAMES[t], self.api.objects(NAMES[t], ns)) for t in types])
        found = []
        for t in types:
            for obj in self.api.objects(CORE[t][0], ns):
                labels = obj["metadata"].get("labels") or {}
                if not selector or all(labels.get(k) == v for k, v in selector.items()):
                    found.append(f"{t}/{obj['metadata']['name']}")
        assert found, f"kubectl get {rest} found nothing"
        return "\n".join(found)


def helm(argv: list[str], installed: set[str]) -> None:
    if not HELM.exists():
        pytest.skip("helm is installed by scripts/setup.sh test")
    args = argv[1:]
    if args[0] in ("install", "upgrade"):
        release = args[1]
        args = ["template", *[a for a in args[1:] if a != "--create-namespace"]]
        installed.add(release)
    elif args[0] == "uninstall":
        assert args[1] in installed, f"helm uninstall {args[1]}: the guide never installed it"
        return
    result = subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, f"{shlex.join(argv)}: {result.stderr}"


def callmesh(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, argv[1:])
    assert result.exit_code == 0, f"{shlex.join(argv)}: {result.output}"
    return result.output


def check_manifest(body: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fragment named by its first line (``# Kind ns/name: spec.path``), merged into the
    example object it belongs to, must validate and render."""
    first = body.splitlines()[0]
    match = re.match(r"# (\w+) ([\w-]+)/([\w-]+): (spec(?:\.\w+)*)$", first)
    assert match, f"a manifest fragment must start with '# Kind ns/name: spec.path': {first}"
    kind, ns, name, path = match.groups()
    fragment = yaml.safe_load(body)
    docs = []
    for file in sorted((ROOT / "examples" / ns).glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(file.read_text()) if d]
    (target,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    node = target
    for key in path.split(".")[:-1]:
        node = node[key]
    last = path.split(".")[-1]
    assert node[last] == {**node[last], **fragment}, "the fragment differs from the example"
    node[last] = copy.deepcopy({**node[last], **fragment})
    folder = tmp_path / ns
    folder.mkdir(exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    callmesh(["callmesh", "validate", str(folder)], monkeypatch)
    rendered = callmesh(["callmesh", "render", str(folder)], monkeypatch)
    assert "kind: StatefulSet" in rendered


# --- the test ----------------------------------------------------------------------------------


async def test_the_operator_guide_runs_as_written(
    cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kubectl = Kubectl(cluster)
    installed: set[str] = set()
    items = blocks(DOC.read_text())
    assert items, "docs/operator.md has no blocks"
    last_output = ""
    ran = {"helm": 0, "kubectl": 0, "callmesh": 0, "yaml": 0, "text": 0}
    for lang, body in items:
        if lang == "yaml":
            check_manifest(body, monkeypatch, tmp_path)
            ran["yaml"] += 1
            continue
        if lang == "text":
            assert last_output, "an output block must follow the command that prints it"
            assert body == last_output, (
                f"the guide shows:\n{body}\nthe command prints:\n{last_output}"
            )
            ran["text"] += 1
            continue
        assert lang == "bash", f"unexpected block language {lang}"
        for line in command_lines(body):
            argv = shlex.split(line)
            ran[argv[0]] += 1
            if argv[0] == "helm":
                helm(argv, installed)
            elif argv[0] == "callmesh":
                last_output = callmesh(argv, monkeypatch)
            else:
                assert argv[0] == "kubectl", line
                await settle(cluster, argv)
                last_output = await kubectl.run(argv)
                await after(cluster, argv, last_output)
    assert all(ran.values()), ran


async def settle(cluster: Any, argv: list[str]) -> None:
    """Before a read, wait for what the guide says it shows (the operator works meanwhile)."""
    line = shlex.join(argv)
    if " get " in line and "acme-insurance" in line and "Degraded" not in line:
        await cluster.wait(lambda: cluster.ready("acme-insurance"), what="the tenant Ready")
    if "Degraded" in line:
        await cluster.wait(
            lambda: cluster.is_("queues", "acme-insurance", "support", "Degraded", "TeamNotFound"),
            what="the queue Degraded",
        )


async def after(cluster: Any, argv: list[str], output: str) -> None:
    """What the guide's prose says each command leads to."""
    line = shlex.join(argv)
    api = cluster.api
    if "Degraded" in line:
        assert output == "TeamNotFound"
        cond = cluster.condition("queues", "acme-insurance", "support", "Degraded")
        assert cond["message"].startswith(
            "spec.tiers[0].teams[0]: AgentTeam 'night-shift' does not exist in namespace "
            "acme-insurance — create it or use one of: "
        ) and cond["message"].endswith("(the last valid version stays applied)")
    if "Ready" in line and "jsonpath" in line:
        assert output == "configuration applied; the tenant's pods are ready"
    if argv[1:3] == ["apply", "-f"] and argv[3].endswith("queues.yaml"):
        await cluster.wait(lambda: cluster.ready("acme-insurance"), what="support repaired")
    if "secret" in argv and "jsonpath" in line:
        assert base64.b64decode(output)  # a generated password
    if argv[1:3] == ["delete", "-f"] and "examples" in argv[3]:
        children = operator_tests.children
        await cluster.wait(lambda: children(api, "acme-insurance") == {}, what="children gone")
        assert api.objects("secrets", "acme-insurance")  # the user's own Secret stays
    await asyncio.sleep(0)


def test_every_condition_reason_is_in_the_guides_table() -> None:
    """The reasons the operator can write are the ones docs/operator.md explains."""
    from callmesh.operator import status as st

    from callmesh.api import problems

    table_text = DOC.read_text().split("## Status: conditions and reasons", 1)[1].split("\n## ")[0]
    documented_names = {
        name
        for line in table_text.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`(\w+)`", line.split("|")[1])
    }
    written = {
        st.AVAILABLE,
        st.PODS_NOT_READY,
        st.ROLLOUT_STALLED,
        st.WAITING,
        st.NO_CENTER,
        st.INVALID,
        st.SECRET_NOT_FOUND,
        st.SECRET_KEY_NOT_FOUND,
        st.APPLY_FAILED,
        st.DEPENDENCY_DEGRADED,
        st.CONTACT_LIST_NOT_FOUND,
        problems.INVALID_SPEC,
        problems.DUPLICATE,
        # nothing refers to a DialerCampaign, so CampaignNotFound never reaches a status
        *(code for kind, code in problems.NOT_FOUND.items() if kind != "DialerCampaign"),
    }
    assert written - documented_names == set()
    assert documented_names - written == set()
