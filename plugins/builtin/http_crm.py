"""A generic HTTP/JSON CRM connector: one GET per caller, fields mapped from the JSON answer.

Config (``spec.plugins[].config`` of ``http-crm``)::

    url: https://crm.example.com/api/customers?phone={ani}
    auth_value_file: /var/run/secrets/crm/token     # a mounted Secret key (or auth_value_env)
    auth_prefix: "Bearer "
    fields:
      display_name: data.name          # required
      customer_id: data.id
      history: data.recent             # a list of strings
      attributes.tier: data.tier       # any attributes.<name>
    record_url: https://crm.example.com/api/interactions    # optional: POST each interaction

The URL template may use ``{ani}``, ``{dnis}``, ``{contact_id}`` and ``{channel}``, each
URL-encoded. Each attempt has ``timeout_seconds``; transport errors and 5xx answers are
retried (tenacity, exponential back-off) up to ``attempts`` in total, all inside the hook's
budget. 404, or an answer where ``display_name`` is missing, means "not found". Other
answers (4xx, malformed JSON) raise an error the manager logs and counts; the screen pop then
shows "unknown caller" and the call goes on. The auth value is read from the file (or
variable) on each request, so a rotated Secret is picked up, and it is never logged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
from callmesh.plugins.hookspecs import hookimpl
from callmesh.plugins.types import CallerQuery, CallerRecord, Interaction
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

__all__ = ["CrmResponseError", "HttpCRM", "HttpCRMConfig"]

URL_FIELDS = ("ani", "dnis", "contact_id", "channel")
RECORD_FIELDS = ("display_name", "customer_id", "history")


class CrmResponseError(Exception):
    """The CRM answered something this connector cannot use."""


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class HttpCRMConfig(BaseModel):
    """Config of ``http-crm``."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Lookup URL template; {ani}, {dnis}, {contact_id}, {channel}.")
    method: Literal["GET", "POST"] = Field(
        default="GET", description="GET, or POST with the query as a JSON body."
    )
    fields: dict[str, str] = Field(
        description="Screen-pop field -> dotted path in the JSON answer (e.g. data.name)."
    )
    auth_header: str = Field(default="Authorization", description="Header carrying the secret.")
    auth_prefix: str = Field(default="", description='Put before the secret, e.g. "Bearer ".')
    auth_value_file: str | None = Field(
        default=None, description="File holding the secret (a mounted Secret key)."
    )
    auth_value_env: str | None = Field(
        default=None, description="Environment variable holding the secret."
    )
    timeout_seconds: float = Field(default=0.5, gt=0, le=30, description="Per attempt.")
    attempts: int = Field(default=3, ge=1, le=10, description="Attempts in total.")
    record_url: str | None = Field(
        default=None, description="If set, each finished interaction is POSTed here as JSON."
    )

    @field_validator("url", "record_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        try:
            names = _placeholders(value)
        except ValueError as exc:
            raise ValueError(f"bad template: {exc}") from None
        unknown = sorted(names - set(URL_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{unknown[0]}}}; use {', '.join('{' + f + '}' for f in URL_FIELDS)}"
            )
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        if "display_name" not in value:
            raise ValueError("must map display_name (the name shown to the agent)")
        for key in value:
            if key not in RECORD_FIELDS and not (key.startswith("attributes.") and key[11:]):
                raise ValueError(
                    f"unknown field {key!r}; use display_name, customer_id, history or "
                    f"attributes.<name>"
                )
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> HttpCRMConfig:
        if self.auth_value_file and self.auth_value_env:
            raise ValueError("set auth_value_file or auth_value_env, not both")
        return self


def _dig(document: Any, path: str) -> Any:
    node = document
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is None:
            return None
    return node


def _plain(record: object) -> dict[str, object]:
    """A dataclass record as JSON-ready data (mappings copied to dicts)."""
    out: dict[str, object] = {}
    for f in dataclasses.fields(record):  # type: ignore[arg-type]
        value = getattr(record, f.name)
        out[f.name] = dict(value) if isinstance(value, Mapping) else value
    return out


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


class HttpCRM:
    """Looks callers up in any HTTP/JSON CRM, mapping its fields to the screen pop."""

    config_model = HttpCRMConfig

    def __init__(self, config: HttpCRMConfig) -> None:
        self.config = config
        if config.auth_value_file and not Path(config.auth_value_file).is_file():
            raise ValueError(
                f"auth_value_file {config.auth_value_file!r} does not exist; mount the Secret"
            )
        if config.auth_value_env and config.auth_value_env not in os.environ:
            raise ValueError(f"auth_value_env: variable {config.auth_value_env!r} is not set")
        self._client: httpx.AsyncClient | None = None

    def _headers(self) -> dict[str, str]:
        secret: str | None = None
        if self.config.auth_value_file:
            secret = Path(self.config.auth_value_file).read_text().strip()
        elif self.config.auth_value_env:
            secret = os.environ.get(self.config.auth_value_env, "")
        headers = {"Accept": "application/json"}
        if secret:
            headers[self.config.auth_header] = self.config.auth_prefix + secret
        return headers

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_seconds)
        return self._client

    async def _send(self, method: str, url: str, body: object | None) -> httpx.Response | None:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.config.attempts),
            wait=wait_exponential(multiplier=0.02, max=0.2),
            retry=retry_if_exception(_retryable),
            reraise=True,
        ):
            with attempt:
                response = await self._http().request(
                    method, url, headers=self._headers(), json=body
                )
                if response.status_code == 404:
                    return None
                response.raise_for_status()
                return response
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    @hookimpl
    async def callmesh_crm_lookup(self, query: CallerQuery) -> CallerRecord | None:
        """GET the URL for this caller and map the answer; None when the CRM does not know them."""
        values = {name: quote(str(getattr(query, name)), safe="") for name in URL_FIELDS}
        url = self.config.url.format_map(values)
        body = _plain(query) if self.config.method == "POST" else None
        response = await self._send(self.config.method, url, body)
        if response is None:
            return None
        try:
            document = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CrmResponseError(f"the CRM answered malformed JSON: {exc}") from None
        name = _dig(document, self.config.fields["display_name"])
        if name is None or name == "":
            return None
        customer_id = ""
        history: tuple[str, ...] = ()
        attributes: dict[str, str] = {}
        for key, path in self.config.fields.items():
            value = _dig(document, path)
            if value is None:
                continue
            if key == "customer_id":
                customer_id = str(value)
            elif key == "history":
                history = tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
            elif key.startswith("attributes."):
                attributes[key[11:]] = str(value)
        return CallerRecord(
            found=True,
            display_name=str(name),
            customer_id=customer_id,
            attributes=attributes,
            history=history,
        )

    @hookimpl
    async def callmesh_crm_record_interaction(self, interaction: Interaction) -> None:
        """POST the interaction as JSON to ``record_url`` (when configured)."""
        if self.config.record_url is None:
            return
        body = _plain(interaction)
        url = self.config.record_url.format_map(
            {
                "ani": quote(interaction.ani, safe=""),
                "dnis": "",
                "contact_id": quote(interaction.id, safe=""),
                "channel": interaction.channel,
            }
        )
        await self._send("POST", url, body)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
