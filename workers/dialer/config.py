"""The dialer's configuration: campaigns from ``tenant.yaml``, lists from mounted files.

The operator mounts each ConfigMap or Secret a campaign names (``contactList``,
``doNotCall``) under one folder, one sub-folder per object and one file per key, as
Kubernetes projects a volume: ``<lists>/<name>/<key>``. A list that is missing or
unreadable does not stop the other campaigns: it becomes a problem in that campaign's
status, and a campaign without its do-not-call list never dials (a DNC hit must never be
dialled, so an unreadable DNC list is not taken as an empty one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from callmesh.api import ContactCenter, DialerCampaign, Queue
from callmesh.api.commands import read_documents
from callmesh.api.validate import check
from callmesh.dialer.contacts import ContactList, RowProblem, parse_contact_csv, parse_do_not_call

__all__ = ["CampaignInput", "DialerConfig", "DialerConfigError", "load_config"]


class DialerConfigError(ValueError):
    """The config file cannot be used at all (missing, unreadable, invalid objects)."""


@dataclass(frozen=True)
class CampaignInput:
    """One campaign as the worker loads it.

    Attributes:
        resource: the DialerCampaign.
        contacts: the parsed list (bad rows in ``contacts.problems``).
        do_not_call: every number of every DNC list.
        problems: what could not be loaded (missing files, bad DNC lines, a CRM list).
        blocked: True when the campaign must not dial at all (a DNC list is unreadable).
    """

    resource: DialerCampaign
    contacts: ContactList
    do_not_call: frozenset[str]
    problems: tuple[str, ...] = ()
    blocked: bool = False


@dataclass(frozen=True)
class DialerConfig:
    """Everything the dialer runs: the tenant, its trunk and its campaigns."""

    namespace: str
    time_zone: str
    trunks: tuple[str, ...]
    campaigns: dict[str, CampaignInput] = field(default_factory=dict)
    digest: str = ""
    wrap_up_seconds: dict[str, float] = field(default_factory=dict)
    """Wrap-up time of each queue (for when the target queues' agents become free)."""


def _read(lists: Path, name: str, key: str, what: str) -> tuple[str | None, str | None]:
    path = lists / name / key
    try:
        return path.read_text(encoding="utf-8-sig"), None
    except FileNotFoundError:
        return None, (
            f"{what} {name}/{key}: no file {path}: mount the ConfigMap or Secret {name!r}"
            f" at {lists / name}"
        )
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{what} {name}/{key}: cannot read {path}: {exc}"


def load_campaign(resource: DialerCampaign, lists: Path, time_zone: str) -> CampaignInput:
    """Parse one campaign's contact list and DNC lists from ``lists``."""
    spec = resource.spec
    problems: list[str] = []
    blocked = False
    dnc: set[str] = set()
    for ref in spec.do_not_call:
        text, error = _read(lists, ref.name, ref.key, "spec.doNotCall")
        if text is None:
            problems.append(f"{error}; the campaign does not dial until it can be read")
            blocked = True
            continue
        numbers, bad = parse_do_not_call(text)
        dnc |= numbers
        problems += [f"spec.doNotCall {ref.name}/{ref.key} line {p.row}: {p.reason}" for p in bad]
    source = spec.contact_list.config_map or spec.contact_list.secret
    default_zone = spec.calling_window.default_time_zone or time_zone
    if source is None:
        problems.append(
            f"spec.contactList.crmPlugin {spec.contact_list.crm_plugin}: this worker loads CSV"
            " lists only; put the list in a ConfigMap or Secret"
        )
        contacts = ContactList((), (RowProblem(1, "no contact list loaded"),))
    else:
        text, error = _read(lists, source.name, source.key, "spec.contactList")
        if text is None:
            problems.append(error or "contact list unreadable")
            contacts = ContactList((), ())
        else:
            contacts = parse_contact_csv(text, default_zone)
    return CampaignInput(resource, contacts, frozenset(dnc), tuple(problems), blocked)


def load_config(path: str | Path, lists: str | Path) -> DialerConfig:
    """Read the rendered ``tenant.yaml`` (or a folder of manifests) and every campaign's lists.

    Raises:
        DialerConfigError: the file is missing or holds invalid objects (each problem with
            its file, line and field).
    """
    path, lists = Path(path), Path(lists)
    if not path.exists():
        raise DialerConfigError(
            f"{path}: no such file: pass --config the rendered tenant.yaml (the dialer's"
            " ConfigMap, mounted at /etc/callmesh)"
        )
    digest = hashlib.sha256()
    files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
    try:
        for file in files:
            digest.update(file.read_bytes())
    except OSError as exc:
        raise DialerConfigError(f"{path}: cannot read the dialer config: {exc}") from None
    docs, problems = read_documents([path])
    found, checked = check(docs)
    good = {id(c.doc) for c in checked}
    kept: list[DialerCampaign] = [c.obj for c in checked if isinstance(c.obj, DialerCampaign)]
    invalid: dict[str, list[str]] = {}
    fatal = list(problems)
    for doc in docs:
        if id(doc) in good:
            continue
        # A campaign that fails a cross-field rule (a calling window that never opens) is
        # kept so its status can say why it does not dial; anything else stops the worker.
        mine = [p for p in found if p.file == doc.file and p.line == doc.line]
        kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if kind == "DialerCampaign" and not doc.problems:
            try:
                resource = DialerCampaign.model_validate(doc.data)
            except ValueError:
                resource = None
            if resource is not None:
                kept.append(resource)
                invalid[resource.name] = [p.format() for p in mine]
                continue
        fatal += mine or list(doc.problems)
    if fatal or (problems and not checked):
        lines = "\n".join(p.format() for p in fatal[:20]) or f"{path}: unreadable"
        raise DialerConfigError(f"{path}: the dialer config has problems:\n{lines}")
    center = next((c.obj for c in checked if isinstance(c.obj, ContactCenter)), None)
    resources = sorted(kept, key=lambda r: r.name)
    zone = center.spec.time_zone if center is not None else "UTC"
    trunks = tuple(t.name for t in center.spec.trunks) if center is not None else ()
    campaigns = {}
    for resource in resources:
        loaded = load_campaign(resource, lists, zone)
        if invalid.get(resource.name):
            loaded = replace(loaded, problems=(*invalid[resource.name], *loaded.problems))
        campaigns[resource.name] = loaded
    for name in campaigns:
        for ref_file in _list_files(campaigns[name].resource, lists):
            if ref_file.exists():
                digest.update(ref_file.read_bytes())
    namespace = center.namespace if center is not None else ""
    wrap = {
        c.obj.name: float(c.obj.spec.wrap_up_seconds) for c in checked if isinstance(c.obj, Queue)
    }
    return DialerConfig(namespace or "", zone, trunks, campaigns, digest.hexdigest(), wrap)


def _list_files(resource: DialerCampaign, lists: Path) -> list[Path]:
    spec = resource.spec
    refs = [spec.contact_list.config_map, spec.contact_list.secret, *spec.do_not_call]
    return [lists / r.name / r.key for r in refs if r is not None]
