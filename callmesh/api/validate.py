"""``callmesh validate`` as a library: every check a manifest goes through before it runs.

For each object, in the order the API server would apply them:

1. the CRD's OpenAPI schema (jsonschema), with unknown fields rejected (the API server would
   silently prune them, which hides typos);
2. the schema's defaults, then the CRD's CEL ``x-kubernetes-validations`` rules
   (:mod:`callmesh.api.cel`);
3. the pydantic model, which the rest of callmesh reads.

Then, per namespace (a tenant), the checks no single object can make: the IVRFlow graph,
references between objects, skills, unique agent ids and extensions, DIDs routed to flows,
IANA time zones, one ContactCenter.

Every problem names the file, line, object and field, and says how to fix it. Objects of
other API groups (ConfigMaps, Secrets, Namespaces next to the manifests) are skipped.

Library entry points: :func:`validate_objects` (what the admission webhook calls),
:func:`validate_paths` (what the CLI calls) and :func:`load_tenants` (what the simulator and
``callmesh render`` call).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import ValidationError

from callmesh.api import KIND_BY_NAME, Resource
from callmesh.api.agentteam import AgentTeam
from callmesh.api.base import API_VERSION, GROUP
from callmesh.api.cel import CelSyntaxError, compile_rule, evaluate
from callmesh.api.contactcenter import ContactCenter
from callmesh.api.crd import openapi_schema
from callmesh.api.dialercampaign import DialerCampaign
from callmesh.api.ivrflow import IVRFlow, NodeType
from callmesh.api.loader import Document
from callmesh.api.problems import (
    DUPLICATE,
    INVALID_SPEC,
    INVALID_YAML,
    PathKey,
    Problem,
    format_path,
    not_found_code,
)
from callmesh.api.queue import Queue
from callmesh.api.tenant import Tenant, group_by_namespace

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")


class InvalidManifests(ValueError):
    """Manifests that did not pass :func:`validate_paths`; ``problems`` lists why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = "\n".join(p.format() for p in self.problems[:20])
        more = f"\n... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the manifests:\n{shown}{more}")


@dataclass(frozen=True)
class Checked:
    """An object that passed the per-object checks, with the document it came from."""

    obj: Resource
    doc: Document


# --- entry points --------------------------------------------------------------------------


def validate_objects(objects: Iterable[Document | Mapping[str, Any]]) -> list[Problem]:
    """Every problem of these objects, read together (one call = one set of tenants).

    ``objects`` are loaded documents (with file and line information) or plain dicts as
    the API server hands them to an admission webhook (reported as file ``<input>``, line
    numbers counted from the object's position in the list). An empty list means valid.
    """
    problems, _ = check(objects)
    return problems


def validate_paths(paths: Iterable[str | Path]) -> list[Problem]:
    """Read files and folders (multi-document YAML) and validate everything in them.

    The files are read by :func:`callmesh.api.commands.read_documents`; this module takes data.
    """
    from callmesh.api.commands import read_documents

    docs, problems = read_documents(paths)
    return validate_documents(docs, problems)


def validate_documents(docs: Iterable[Document], problems: Iterable[Problem] = ()) -> list[Problem]:
    """Every problem of loaded documents (plus ``problems`` met reading them), sorted."""
    found, _ = check(docs)
    return sorted([*problems, *found], key=_sort_key)


def load_tenants(paths: Iterable[str | Path]) -> dict[str, Tenant]:
    """Parsed, validated models from files and folders, grouped by namespace.

    Signature: ``load_tenants(paths: Iterable[str | Path]) -> dict[str, Tenant]``, keyed and
    sorted by namespace; each :class:`~callmesh.api.Tenant` holds that namespace's
    ContactCenter (or None), and its Queues, AgentTeams, IVRFlows and DialerCampaigns by name.
    Objects of other API groups are ignored.

    Raises :class:`InvalidManifests` (a ``ValueError`` with ``.problems``) when any check of
    :func:`validate_paths` fails, so callers never run on a half-valid tenant.
    """
    from callmesh.api.commands import read_documents

    docs, problems = read_documents(paths)
    return tenants_of(docs, problems)


def tenants_of(docs: Iterable[Document], problems: Iterable[Problem] = ()) -> dict[str, Tenant]:
    """:func:`load_tenants` for documents already read (``parse_yaml`` of a text)."""
    found, checked = check(docs)
    every = sorted([*problems, *found], key=_sort_key)
    if every:
        raise InvalidManifests(every)
    return group_by_namespace(c.obj for c in checked)


def check(objects: Iterable[Document | Mapping[str, Any]]) -> tuple[list[Problem], list[Checked]]:
    """Problems of ``objects``, and the objects that passed the per-object checks."""
    problems: list[Problem] = []
    checked: list[Checked] = []
    present: set[tuple[str, str, str]] = set()
    for i, item in enumerate(objects):
        doc = item if isinstance(item, Document) else Document(item, "<input>", i + 1, i)
        found, obj = _check_document(doc)
        problems.extend(found)
        if obj is not None:
            checked.append(Checked(obj, doc))
        elif (key := _identity(doc.data)) is not None:
            present.add(key)
    problems.extend(_cross_checks(checked, present))
    return sorted(problems, key=_sort_key), checked


def _identity(data: Any) -> tuple[str, str, str] | None:
    """(namespace, kind, name) of a callmesh object that failed its own checks, if readable.

    Such an object exists (its problems are reported); references to it are not reported
    again as dangling, and checks that need its content are skipped.
    """
    if not isinstance(data, dict) or data.get("apiVersion") != API_VERSION:
        return None
    meta = data.get("metadata")
    kind = data.get("kind")
    if not isinstance(meta, dict) or not isinstance(kind, str):
        return None
    name, namespace = meta.get("name"), meta.get("namespace", "default")
    if isinstance(name, str) and isinstance(namespace, str):
        return (namespace, kind, name)
    return None


def _sort_key(p: Problem) -> tuple[str, int, str, str]:
    return (p.file, p.line, p.path, p.message)


# --- per object ----------------------------------------------------------------------------


class _Reporter:
    """Makes problems for one document, with lines looked up by path."""

    def __init__(self, doc: Document, kind: str = "", name: str = "") -> None:
        self.doc = doc
        self.kind = kind
        self.name = name
        self.problems: list[Problem] = []

    def add(
        self,
        path: Sequence[str | int],
        message: str,
        code: str = INVALID_SPEC,
        target: tuple[str, str] | None = None,
    ) -> None:
        self.problems.append(
            Problem(
                self.doc.file,
                self.doc.line_of(path),
                self.kind,
                self.name,
                format_path(path),
                message,
                code,
                target,
            )
        )


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _check_document(doc: Document) -> tuple[list[Problem], Resource | None]:
    data = doc.data
    report = _Reporter(doc)
    if not isinstance(data, dict):
        report.add(
            (),
            f"a manifest must be a mapping with apiVersion, kind, metadata and spec, "
            f"not {_json_type(data)} — write one object per YAML document",
            INVALID_YAML,
        )
        return report.problems, None
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    report.kind = kind if isinstance(kind, str) else ""
    report.name = name if isinstance(name, str) else ""

    ours = isinstance(api_version, str) and api_version.split("/", 1)[0] == GROUP
    if not ours:
        if api_version is None and isinstance(kind, str) and kind in KIND_BY_NAME:
            report.add(("apiVersion",), f"apiVersion is missing — add apiVersion: {API_VERSION}")
        elif api_version is None:
            report.add(
                ("apiVersion",),
                f"apiVersion is missing — add apiVersion: {API_VERSION} and a kind",
            )
        elif not isinstance(api_version, str):
            report.add(("apiVersion",), f"apiVersion must be a string — write {API_VERSION}")
        return report.problems, None  # another API group: not ours to check
    if api_version != API_VERSION:
        report.add(
            ("apiVersion",),
            f"{api_version} is not a served version — use apiVersion: {API_VERSION}",
        )
        return report.problems, None
    if not isinstance(kind, str) or kind not in KIND_BY_NAME:
        choices = ", ".join(KIND_BY_NAME)
        shown = repr(kind) if kind is not None else "missing"
        hint = _did_you_mean(kind, KIND_BY_NAME) if isinstance(kind, str) else ""
        report.add(("kind",), f"kind {shown} is not a callmesh kind{hint} — use one of {choices}")
        return report.problems, None

    model = KIND_BY_NAME[kind]
    if doc.problems:
        report.problems.extend(
            Problem(p.file, p.line, report.kind, report.name, p.path, p.message, p.code)
            for p in doc.problems
        )
        return report.problems, None
    _check_metadata(metadata, report)
    schema = _schema(kind)
    error_paths = _check_schema(data, schema, report)
    _check_unknown_fields(data, schema, (), report, top=True)
    defaulted = apply_defaults(data, schema)
    _check_cel(defaulted, schema, (), error_paths, report)
    if report.problems:
        return report.problems, None
    try:
        obj = model.model_validate(defaulted)
    except ValidationError as exc:
        for err in exc.errors():
            report.add(tuple(err["loc"]), f"{err['msg']} — fix the value")
        return report.problems, None
    _check_object_semantics(obj, report)
    return report.problems, (obj if not report.problems else None)


def _check_metadata(metadata: Any, report: _Reporter) -> None:
    if metadata is None:
        report.add(("metadata",), "metadata is missing — add metadata: {name: ..., namespace: ...}")
        return
    if not isinstance(metadata, dict):
        report.add(("metadata",), "metadata must be a mapping — write metadata: {name: ...}")
        return
    name = metadata.get("name")
    if name is None:
        report.add(("metadata", "name"), "name is missing — give the object a name")
    elif not isinstance(name, str) or len(name) > 253 or not _NAME.match(name):
        report.add(
            ("metadata", "name"),
            f"{name!r} is not a valid object name — use lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit (at most 253 characters)",
        )
    namespace = metadata.get("namespace")
    if namespace is not None and (
        not isinstance(namespace, str) or len(namespace) > 63 or not _LABEL.match(namespace)
    ):
        report.add(
            ("metadata", "namespace"),
            f"{namespace!r} is not a valid namespace — use lowercase letters, digits and '-' "
            "(at most 63 characters)",
        )
    for field in ("labels", "annotations"):
        value = metadata.get(field)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            report.add(
                ("metadata", field),
                f'{field} must map strings to strings — quote values such as "true" or "1"',
            )


@cache
def _schema(kind: str) -> dict[str, Any]:
    return openapi_schema(KIND_BY_NAME[kind])


@cache
def _validator(kind: str) -> jsonschema.Draft4Validator:
    # OpenAPI v3.0 schemas use draft-4 semantics (boolean exclusiveMinimum); metadata is
    # checked separately, like the API server does.
    return jsonschema.Draft4Validator(_schema(kind))


def _check_schema(data: dict[str, Any], schema: dict[str, Any], report: _Reporter) -> list[PathKey]:
    kind = report.kind
    error_paths: list[PathKey] = []
    seen_required: set[PathKey] = set()
    errors = sorted(_validator(kind).iter_errors(data), key=lambda e: list(map(str, e.path)))
    for err in errors:
        path: PathKey = tuple(err.absolute_path)
        if path[:1] == ("metadata",):
            continue
        error_paths.append(path)
        if err.validator == "required":
            if path in seen_required:
                continue
            seen_required.add(path)
            props = err.schema.get("properties", {}) if isinstance(err.schema, Mapping) else {}
            for missing in err.validator_value:
                if isinstance(err.instance, dict) and missing not in err.instance:
                    what = props.get(missing, {}).get("description", "")
                    report.add(
                        (*path, missing),
                        f"required field {missing} is missing — add it ({what.rstrip('.')})",
                    )
            continue
        report.add(path, _schema_message(err))
    return error_paths


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_message(err: jsonschema.ValidationError) -> str:
    v = err.validator
    value: Any = err.instance
    schema: Mapping[str, Any] = err.schema if isinstance(err.schema, Mapping) else {}
    desc = str(schema.get("description", "")).rstrip(".")
    about = f" ({desc})" if desc else ""
    if v == "type":
        want = _TYPE_WORDS.get(str(err.validator_value), str(err.validator_value))
        got = _json_type(value)
        hint = ""
        if err.validator_value in ("integer", "number") and isinstance(value, str):
            hint = " without units or quotes, e.g. 30"
        elif err.validator_value == "string" and not isinstance(value, dict | list):
            hint = ' in quotes, e.g. "' + str(value) + '"'
        elif err.validator_value == "array":
            hint = " (one '- ' entry per line)"
        return f"expected {want}, got {got} {_short(value)} — write {want}{hint}{about}"
    if v == "enum":
        allowed = ", ".join(str(a) for a in schema["enum"])
        hint = _did_you_mean(str(value), [str(a) for a in schema["enum"]])
        return f"{_short(value)} is not allowed{hint} — use one of: {allowed}"
    if v in ("minimum", "maximum"):
        bound = schema[v]
        exclusive = schema.get("exclusiveMinimum" if v == "minimum" else "exclusiveMaximum")
        if v == "minimum":
            rel = "greater than" if exclusive else "at least"
            return f"{_short(value)} is too small — use a value {rel} {bound}{about}"
        rel = "less than" if exclusive else "at most"
        return f"{_short(value)} is too large — use a value {rel} {bound}{about}"
    if v == "minLength":
        if value == "":
            return f"must not be empty — give a value{about}"
        return f"{_short(value)} is too short — use at least {schema['minLength']} characters"
    if v == "maxLength":
        return (
            f"is {len(value)} characters long — shorten it to at most {schema['maxLength']}{about}"
        )
    if v == "pattern":
        return (
            f"{_short(value)} is not in the expected form — expected: {desc or schema['pattern']}"
        )
    if v == "minItems":
        n = schema["minItems"]
        if not value:
            return f"is empty — add at least {n} entr{'y' if n == 1 else 'ies'}{about}"
        return f"has {len(value)} entries — add entries up to at least {n}"
    if v == "maxItems":
        return f"has {len(value)} entries — the limit is {schema['maxItems']}; remove or split some"
    if v == "maxProperties":
        return f"has {len(value)} keys — the limit is {schema['maxProperties']}"
    if v == "format":
        return f"{_short(value)} is not a valid {schema['format']} — fix the value"
    return f"{err.message} — fix the value{about}"


def _check_unknown_fields(
    data: Any, schema: Mapping[str, Any], path: PathKey, report: _Reporter, *, top: bool = False
) -> None:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(data, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in data.items():
            if props is not None and key in props:
                if not (top and key == "metadata"):
                    _check_unknown_fields(value, props[key], (*path, key), report)
            elif isinstance(extra, Mapping):
                _check_unknown_fields(value, extra, (*path, str(key)), report)
            elif props is not None:
                known = list(props) if not top else list(_TOP_LEVEL)
                where = format_path(path) or "the object"
                report.add(
                    (*path, str(key)),
                    f"unknown field {key}{_did_you_mean(str(key), known)} — remove it; "
                    f"{where} accepts: {', '.join(known)}",
                )
    elif isinstance(data, list) and isinstance(schema.get("items"), Mapping):
        _check_list_type(data, schema, path, report)
        for i, item in enumerate(data):
            _check_unknown_fields(item, schema["items"], (*path, i), report)


def _check_list_type(
    data: list[Any], schema: Mapping[str, Any], path: PathKey, report: _Reporter
) -> None:
    """``x-kubernetes-list-type`` map/set: the API server rejects duplicate keys or items."""
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("map", "set"):
        return
    keys: list[str] = list(schema.get("x-kubernetes-list-map-keys", ()))
    seen: dict[str, int] = {}
    for i, item in enumerate(data):
        if list_type == "map":
            if not isinstance(item, dict) or not all(k in item for k in keys):
                continue  # the schema reports the wrong type or the missing key
            identity = json.dumps([item[k] for k in keys], default=repr)
            where: PathKey = (*path, i, keys[0]) if len(keys) == 1 else (*path, i)
            shown = ", ".join(f"{k} {item[k]}" for k in keys)
            what = "/".join(keys)
        else:
            identity = json.dumps(item, sort_keys=True, default=repr)
            where, shown, what = (*path, i), repr(item), "entry"
        if identity in seen:
            first = format_path((*path, seen[identity]))
            report.add(
                where,
                f"duplicate {shown} (also in {first}) — each entry needs its own {what}",
            )
        else:
            seen[identity] = i


def apply_defaults(data: Any, schema: Mapping[str, Any]) -> Any:
    """A copy of ``data`` with the schema's defaults filled in, as the API server does.

    A default is applied to a missing field of an object that is present, and the applied
    value is then defaulted in turn (so ``strategy: {}`` gets ``strategy.name``).
    """
    if isinstance(data, dict) and schema.get("type") == "object":
        out = dict(data)
        props = schema.get("properties", {})
        for key, sub in props.items():
            if key not in out and "default" in sub:
                out[key] = sub["default"]
        for key, value in list(out.items()):
            if key in props:
                out[key] = apply_defaults(value, props[key])
            elif isinstance(schema.get("additionalProperties"), Mapping):
                out[key] = apply_defaults(value, schema["additionalProperties"])
        return out
    if isinstance(data, list) and isinstance(schema.get("items"), Mapping):
        return [apply_defaults(item, schema["items"]) for item in data]
    return data


def _contains_error(path: PathKey, error_paths: Sequence[PathKey]) -> bool:
    return any(err[: len(path)] == path for err in error_paths)


def _field_path(field_path: str) -> PathKey:
    """``.tiers`` / ``.spec.end`` / ``.items[2]`` -> path parts."""
    parts: list[str | int] = []
    for token in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", field_path):
        parts.append(token[0] if token[0] else int(token[1]))
    return tuple(parts)


def _check_cel(
    data: Any,
    schema: Mapping[str, Any],
    path: PathKey,
    error_paths: Sequence[PathKey],
    report: _Reporter,
) -> None:
    # The API server skips rules on values that failed their schema; so do we.
    if data is None or path in error_paths:
        return
    if isinstance(data, dict) and schema.get("type") == "object":
        for key, sub in schema.get("properties", {}).items():
            if key in data and not (path == () and key == "metadata"):
                _check_cel(data[key], sub, (*path, key), error_paths, report)
    elif isinstance(data, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(data):
            _check_cel(item, schema["items"], (*path, i), error_paths, report)
    if _contains_error(path, error_paths):
        return
    for rule in schema.get("x-kubernetes-validations", ()):
        outcome = evaluate(rule["rule"], data)
        target = (*path, *_field_path(rule.get("fieldPath", "")))
        if outcome.error is not None:
            report.add(
                path,
                f"rule `{rule['rule']}` could not be evaluated ({outcome.error}) — "
                "check the fields it reads",
            )
        elif not outcome.passed:
            report.add(target, rule.get("message", f"failed rule `{rule['rule']}`"))


def _zone_problem(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, zoneinfo.available_timezones(), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return (
            f"{name!r} is not an IANA time zone{hint} — use a name such as "
            "America/New_York or Europe/Berlin"
        )
    return None


def _check_object_semantics(obj: Resource, report: _Reporter) -> None:
    """Checks of one object that JSON schema and CEL cannot express (time zones, dates)."""
    if isinstance(obj, ContactCenter):
        zones: list[tuple[PathKey, str]] = [(("spec", "timeZone"), obj.spec.time_zone)]
        for i, sched in enumerate(obj.spec.schedules):
            if sched.time_zone is not None:
                zones.append((("spec", "schedules", i, "timeZone"), sched.time_zone))
            for j, holiday in enumerate(sched.holidays):
                try:
                    dt.date.fromisoformat(holiday.date)
                except ValueError:
                    report.add(
                        ("spec", "schedules", i, "holidays", j, "date"),
                        f"{holiday.date} is not a calendar date — fix the day or month",
                    )
        for path, zone in zones:
            if (msg := _zone_problem(zone)) is not None:
                report.add(path, msg)
    elif isinstance(obj, IVRFlow):
        for i, node in enumerate(obj.spec.nodes):
            if node.condition is None or node.condition.expression is None:
                continue
            try:
                compile_rule(node.condition.expression)
            except CelSyntaxError as exc:
                first = str(exc.__cause__ or exc).strip().splitlines()[0]
                report.add(
                    ("spec", "nodes", i, "condition", "expression"),
                    f"is not a valid CEL expression ({first}) — fix the syntax, e.g. "
                    'attributes["crm.vip"] == "true"',
                )
    elif isinstance(obj, DialerCampaign):
        zone = obj.spec.calling_window.default_time_zone
        if (msg := _zone_problem(zone)) is not None:
            report.add(("spec", "callingWindow", "defaultTimeZone"), msg)


# --- across objects ------------------------------------------------------------------------


def _names(objects: Iterable[str]) -> str:
    listed = sorted(objects)
    return ", ".join(listed) if listed else "none"


def _cross_checks(checked: Sequence[Checked], present: set[tuple[str, str, str]]) -> list[Problem]:
    problems: list[Problem] = []
    by_ns: dict[str, list[Checked]] = {}
    for c in checked:
        by_ns.setdefault(c.obj.namespace, []).append(c)
    for namespace, items in by_ns.items():
        invalid = {(kind, name) for ns, kind, name in present if ns == namespace}
        problems.extend(_Namespace(namespace, items, invalid).run())
    return problems


class _Namespace:
    """The cross-object checks of one tenant."""

    def __init__(
        self, namespace: str, items: Sequence[Checked], invalid: set[tuple[str, str]]
    ) -> None:
        self.namespace = namespace
        #: (kind, name) of objects present but invalid (already reported).
        self.invalid = invalid
        self.items = items
        self.problems: list[Problem] = []
        self.centers = [c for c in items if isinstance(c.obj, ContactCenter)]
        self.queues: dict[str, Queue] = {}
        self.teams: dict[str, AgentTeam] = {}
        self.flows: dict[str, IVRFlow] = {}
        for c in items:
            if isinstance(c.obj, Queue):
                self.queues.setdefault(c.obj.name, c.obj)
            elif isinstance(c.obj, AgentTeam):
                self.teams.setdefault(c.obj.name, c.obj)
            elif isinstance(c.obj, IVRFlow):
                self.flows.setdefault(c.obj.name, c.obj)

    def reporter(self, c: Checked) -> _Reporter:
        return _Reporter(c.doc, c.obj.kind_name, c.obj.name)

    def run(self) -> list[Problem]:
        seen: dict[tuple[str, str], Checked] = {}
        twins: list[Checked] = []
        for c in self.items:
            key = (c.obj.kind_name, c.obj.name)
            if key in seen:
                twins.append(c)
                first = seen[key]
                r = self.reporter(c)
                r.add(
                    ("metadata", "name"),
                    f"{key[0]}/{key[1]} is defined twice in namespace {self.namespace} "
                    f"(first in {first.doc.file}:{first.doc.line}) — rename or remove one",
                    DUPLICATE,
                )
                self.problems.extend(r.problems)
            else:
                seen[key] = c
        # A second object of the same kind and name is reported once, as a twin, and then
        # left out: it would otherwise repeat every problem of the first.
        self.items = [c for c in self.items if not any(c is t for t in twins)]
        for c in self.items:
            r = self.reporter(c)
            if isinstance(c.obj, ContactCenter):
                self._center(c.obj, r)
            elif isinstance(c.obj, Queue):
                self._queue(c.obj, r)
            elif isinstance(c.obj, AgentTeam):
                self._team(c.obj, r)
            elif isinstance(c.obj, IVRFlow):
                self._flow(c.obj, r)
            elif isinstance(c.obj, DialerCampaign):
                self._campaign(c.obj, r)
            self.problems.extend(r.problems)
        self._unique_agents()
        return self.problems

    # -- references ---------------------------------------------------------------------

    def _ref(
        self, r: _Reporter, path: PathKey, kind: str, name: str, existing: Iterable[str]
    ) -> bool:
        """Report a dangling reference; True when ``name`` is usable (exists and valid)."""
        names = list(existing)
        if name in names:
            return True
        if (kind, name) not in self.invalid:
            r.add(path, self._missing(kind, name, names), not_found_code(kind), (kind, name))
        return False

    def _missing(self, kind: str, name: str, existing: Iterable[str]) -> str:
        names = list(existing)
        return (
            f"{kind} {name!r} does not exist in namespace {self.namespace}"
            f"{_did_you_mean(name, names)} — create it or use one of: {_names(names)}"
        )

    def _center(self, cc: ContactCenter, r: _Reporter) -> None:
        first = self.centers[0].obj
        if cc is not first and cc.name != first.name:  # a same-named one is reported as a twin
            r.add(
                ("metadata", "name"),
                f"namespace {self.namespace} already has ContactCenter {first.name} "
                f"(in {self.centers[0].doc.file}:{self.centers[0].doc.line}) — "
                "a namespace is one tenant: keep one ContactCenter per namespace",
                DUPLICATE,
            )
        if cc is not first:
            return
        for i, number in enumerate(cc.spec.numbers):
            self._ref(r, ("spec", "numbers", i, "flow"), "IVRFlow", number.flow, self.flows)

    def _agents_of(self, queue: Queue) -> list[Any]:
        return [
            agent
            for tier in queue.spec.tiers
            for team in tier.teams
            if team in self.teams
            for agent in self.teams[team].spec.agents
        ]

    def _queue(self, q: Queue, r: _Reporter) -> None:
        missing_team = False
        for i, tier in enumerate(q.spec.tiers):
            for j, team in enumerate(tier.teams):
                path: PathKey = ("spec", "tiers", i, "teams", j)
                if not self._ref(r, path, "AgentTeam", team, self.teams):
                    missing_team = True
        if q.spec.overflow is not None and q.spec.overflow.queue is not None:
            target = q.spec.overflow.queue
            if target == q.name:
                r.add(
                    ("spec", "overflow", "queue"),
                    "a queue cannot overflow to itself — name another queue or choose voicemail",
                )
            else:
                self._ref(r, ("spec", "overflow", "queue"), "Queue", target, self.queues)
        if missing_team:
            return
        agents = self._agents_of(q)
        team_names = _names({t for tier in q.spec.tiers for t in tier.teams})
        channel = q.spec.channel.value
        if not any(getattr(a.capacity, channel) > 0 for a in agents):
            r.add(
                ("spec", "channel"),
                f"no agent of teams {team_names} can take {channel} contacts "
                f"(capacity.{channel} is 0 for all) — give agents {channel} capacity or "
                "change the channel",
            )
        before = len(r.problems)
        self._skills(q.spec.required_skills, agents, team_names, ("spec", "requiredSkills"), r)
        if len(r.problems) > before or not any(getattr(a.capacity, channel) > 0 for a in agents):
            return  # the queue as a whole is already reported
        # Each tier must have someone able to take the queue's contacts, or it is dead weight.
        for i, tier in enumerate(q.spec.tiers):
            members = [a for team in tier.teams for a in self.teams[team].spec.agents]
            if not any(
                getattr(a.capacity, channel) > 0
                and all(_holds(a, req) for req in q.spec.required_skills)
                for a in members
            ):
                wanted = ", ".join(f"{x.name}>={x.min_level}" for x in q.spec.required_skills)
                needs = f"{channel} capacity" + (f" and skills {wanted}" if wanted else "")
                r.add(
                    ("spec", "tiers", i, "teams"),
                    f"no agent of tier {tier.level} (teams {_names(tier.teams)}) has {needs}, "
                    "so this tier is never offered a contact — add such an agent or drop the tier",
                )

    def _skills(
        self,
        required: Sequence[Any],
        agents: Sequence[Any],
        team_names: str,
        path: PathKey,
        r: _Reporter,
        extra: Sequence[Any] = (),
    ) -> None:
        """Some single agent must hold every required skill at its level."""

        everything = [*extra, *required]
        if not everything:
            return
        gap = False
        for i, req in enumerate(required):
            if not any(_holds(a, req) for a in agents):
                gap = True
                r.add(
                    (*path, i, "name"),
                    f"no agent of teams {team_names} holds skill {req.name} at level "
                    f"{req.min_level} or higher — add the skill to an agent or lower minLevel",
                )
        if gap:
            return
        if not any(all(_holds(a, req) for req in everything) for a in agents):
            wanted = ", ".join(f"{q.name}>={q.min_level}" for q in everything)
            r.add(
                path,
                f"no single agent of teams {team_names} holds all of {wanted}, so these "
                "contacts can never be routed — give one agent all of them or require fewer",
            )

    def _team(self, team: AgentTeam, r: _Reporter) -> None:
        ids = {a.id for a in team.spec.agents}
        for i, shift in enumerate(team.spec.shifts):
            for j, agent in enumerate(shift.agents):
                if agent not in ids:
                    r.add(
                        ("spec", "shifts", i, "agents", j),
                        f"agent {agent!r} is not in this team{_did_you_mean(agent, ids)} — "
                        "list an id from spec.agents",
                    )

    def _unique_agents(self) -> None:
        seen_id: dict[str, tuple[str, int]] = {}
        seen_ext: dict[str, tuple[str, int]] = {}
        for c in self.items:
            if not isinstance(c.obj, AgentTeam):
                continue
            r = self.reporter(c)
            for i, agent in enumerate(c.obj.spec.agents):
                for field, value, seen in (
                    ("id", agent.id, seen_id),
                    ("extension", agent.extension, seen_ext),
                ):
                    if value in seen:
                        other, j = seen[value]
                        owner = "this team" if other == c.obj.name else f"AgentTeam/{other}"
                        r.add(
                            ("spec", "agents", i, field),
                            f"{field} {value} is already used by {owner} "
                            f"spec.agents[{j}] — agent {field}s must be unique in namespace "
                            f"{self.namespace}; pick another",
                            DUPLICATE,
                        )
                    else:
                        seen.setdefault(value, (c.obj.name, i))
            self.problems.extend(r.problems)

    def _campaign(self, camp: DialerCampaign, r: _Reporter) -> None:
        if not self._ref(r, ("spec", "queue"), "Queue", camp.spec.queue, self.queues):
            return
        queue = self.queues[camp.spec.queue]
        if queue.spec.channel.value != "voice":
            r.add(
                ("spec", "queue"),
                f"Queue {queue.name} is a {queue.spec.channel.value} queue — a campaign places "
                "calls: target a voice queue",
            )

    # -- the IVR graph --------------------------------------------------------------------

    def _flow(self, flow: IVRFlow, r: _Reporter) -> None:
        spec = flow.spec
        ids = {n.id: i for i, n in enumerate(spec.nodes)}
        center = self.centers[0].obj if self.centers else None
        schedules = (
            {s.name for s in center.spec.schedules} if isinstance(center, ContactCenter) else set()
        )
        if spec.on_error is not None and spec.on_error not in ids:
            r.add(("spec", "onError"), self._missing_node(spec.on_error, ids))
        edges: dict[str, list[str]] = {}
        for i, node in enumerate(spec.nodes):
            out: list[str] = []
            for target, path in _targets(node, i):
                if target is None:
                    # A step that can fail goes to onError, or hangs up.
                    if spec.on_error is not None and spec.on_error in ids:
                        out.append(spec.on_error)
                    else:
                        out.append(_EXIT)
                elif target == _EXIT:
                    out.append(_EXIT)
                elif target not in ids:
                    r.add(path, self._missing_node(target, ids))
                    out.append(_EXIT)  # reported once; not also a dead end
                else:
                    out.append(target)
            edges[node.id] = out
            base: PathKey = ("spec", "nodes", i)
            if node.type in (NodeType.queue, NodeType.callback):
                settings = node.queue if node.type == NodeType.queue else node.callback
                assert settings is not None
                key = "queue" if node.type == NodeType.queue else "callback"
                usable = self._ref(r, (*base, key, "queue"), "Queue", settings.queue, self.queues)
                if usable and node.queue is not None and node.queue.skills:
                    q = self.queues[node.queue.queue]
                    if all(t in self.teams for tier in q.spec.tiers for t in tier.teams):
                        self._skills(
                            node.queue.skills,
                            self._agents_of(q),
                            _names({t for tier in q.spec.tiers for t in tier.teams}),
                            (*base, "queue", "skills"),
                            r,
                            extra=q.spec.required_skills,
                        )
            if node.condition is not None and node.condition.schedule is not None:
                name = node.condition.schedule
                if not self.centers:
                    r.add(
                        (*base, "condition", "schedule"),
                        f"schedule {name!r} needs a ContactCenter in namespace {self.namespace} "
                        "— add one with this schedule in spec.schedules",
                    )
                elif name not in schedules:
                    r.add(
                        (*base, "condition", "schedule"),
                        f"schedule {name!r} is not in ContactCenter "
                        f"{self.centers[0].obj.name}{_did_you_mean(name, schedules)} — "
                        f"add it to spec.schedules or use one of: {_names(schedules)}",
                    )
        if spec.entry not in ids:
            return  # the CEL rule reports it
        reachable = _reach(spec.entry, edges)
        for node_id, i in ids.items():
            if node_id not in reachable:
                r.add(
                    ("spec", "nodes", i, "id"),
                    f"node {node_id} cannot be reached from entry {spec.entry} — point a "
                    "target at it or remove it",
                )
        exits = _can_exit(edges)
        trapped = [n.id for n in spec.nodes if n.id in reachable and n.id not in exits]
        while trapped:
            start = trapped[0]
            cycle = _cycle_from(start, edges, set(trapped))
            r.add(
                ("spec", "nodes", ids[cycle[0]], "id"),
                f"nodes {' -> '.join(cycle)} loop with no way out — give one of them a "
                "target that leads to a queue, voicemail, callback, transfer or hangup node",
            )
            caught = _reach(start, edges)
            trapped = [t for t in trapped if t not in caught]

    def _missing_node(self, target: str, ids: Mapping[str, int]) -> str:
        return (
            f"node {target!r} does not exist in this flow{_did_you_mean(target, ids)} — "
            f"use one of: {_names(ids)}"
        )


_EXIT = "\0exit"


def _holds(agent: Any, req: Any) -> bool:
    """Whether ``agent`` holds the required skill at its minimum level or above."""
    return any(s.name == req.name and s.level >= req.min_level for s in agent.skills)


def _targets(node: Any, i: int) -> Iterator[tuple[str | None, PathKey]]:
    """A node's outgoing edges with their paths; ``None`` is 'on failure' (onError/hangup)."""
    base: PathKey = ("spec", "nodes", i)
    t = node.type
    if t == NodeType.play:
        yield node.play.next, (*base, "play", "next")
    elif t == NodeType.say:
        yield node.say.next, (*base, "say", "next")
    elif t == NodeType.set_attribute:
        yield node.set_attribute.next, (*base, "setAttribute", "next")
    elif t == NodeType.menu:
        menu = node.menu
        for j, option in enumerate(menu.options):
            yield option.target, (*base, "menu", "options", j, "target")
        yield menu.invalid_target, (*base, "menu", "invalidTarget")
        yield menu.timeout_target, (*base, "menu", "timeoutTarget")
    elif t == NodeType.collect:
        yield node.collect.next, (*base, "collect", "next")
        yield node.collect.invalid_target, (*base, "collect", "invalidTarget")
    elif t == NodeType.condition:
        cond = node.condition
        yield cond.if_true, (*base, "condition", "ifTrue")
        yield cond.if_false, (*base, "condition", "ifFalse")
        if cond.expression is not None:
            yield None, (*base, "condition", "expression")
    elif t == NodeType.crm_lookup:
        look = node.crm_lookup
        yield look.next, (*base, "crmLookup", "next")
        if look.not_found is not None:
            yield look.not_found, (*base, "crmLookup", "notFound")
        yield None, (*base, "crmLookup")
    else:  # queue, voicemail, callback, transfer, hangup end the flow
        yield _EXIT, base


def _reach(start: str, edges: Mapping[str, Sequence[str]]) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _can_exit(edges: Mapping[str, Sequence[str]]) -> set[str]:
    back: dict[str, list[str]] = {}
    for src, outs in edges.items():
        for dst in outs:
            back.setdefault(dst, []).append(src)
    return _reach(_EXIT, back)


def _cycle_from(start: str, edges: Mapping[str, Sequence[str]], within: set[str]) -> list[str]:
    """Follow edges inside ``within`` from ``start`` until a node repeats: that loop."""
    order: list[str] = []
    at: dict[str, int] = {}
    node = start
    while node not in at:
        at[node] = len(order)
        order.append(node)
        node = next(n for n in edges[node] if n in within)
    return [*order[at[node] :], node]
