"""The built-in SMTP notifier: an email for chosen contact events (missed, abandoned, ...).

Config (``smtp-notifier``)::

    host: smtp.example.com
    port: 587
    starttls: true
    username: callmesh
    password_file: /var/run/secrets/smtp/password   # or password_env
    sender: contact-center@example.com
    recipients: [supervisors@example.com]
    events: [missed, abandoned, voicemail]

Mail is sent with aiosmtplib inside the hook's budget; the password is read on each send
and never logged.
"""

from __future__ import annotations

import os
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from callmesh.plugins.hookspecs import hookimpl
from callmesh.plugins.types import ContactEvent, ContactEventKind
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SmtpNotifier", "SmtpNotifierConfig", "render_message"]


class SmtpNotifierConfig(BaseModel):
    """Config of ``smtp-notifier``."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, description="SMTP server host.")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP server port.")
    starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS.")
    use_tls: bool = Field(default=False, description="Connect with implicit TLS (port 465).")
    username: str | None = Field(default=None, description="Login user, if the server needs it.")
    password_file: str | None = Field(default=None, description="File holding the password.")
    password_env: str | None = Field(default=None, description="Variable holding the password.")
    sender: str = Field(min_length=3, pattern=r".+@.+", description="From address.")
    recipients: list[str] = Field(min_length=1, description="To addresses.")
    events: list[ContactEventKind] = Field(
        default_factory=lambda: [ContactEventKind.MISSED, ContactEventKind.ABANDONED],
        description="Which contact events send an email.",
    )
    subject_prefix: str = Field(default="[callmesh]", description="Put before every subject.")
    timeout_seconds: float = Field(default=5.0, gt=0, le=60, description="SMTP timeout.")

    @model_validator(mode="after")
    def _checks(self) -> SmtpNotifierConfig:
        if self.password_file and self.password_env:
            raise ValueError("set password_file or password_env, not both")
        if (self.password_file or self.password_env) and not self.username:
            raise ValueError("username is required with a password")
        if self.starttls and self.use_tls:
            raise ValueError("use starttls or use_tls, not both")
        return self


def render_message(config: SmtpNotifierConfig, event: ContactEvent) -> EmailMessage:
    """The email for ``event``."""
    message = EmailMessage()
    who = event.ani or "an unknown caller"
    message["Subject"] = (
        f"{config.subject_prefix} {event.kind.value} contact from {who} in {event.queue}"
    )
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    lines = [
        f"Event: {event.kind.value}",
        f"Contact: {event.contact_id}",
        f"Queue: {event.queue}",
        f"Customer: {who}",
    ]
    if event.agent_id:
        lines.append(f"Agent: {event.agent_id}")
    lines += [f"{key}: {value}" for key, value in sorted(event.attributes.items())]
    message.set_content("\n".join(lines) + "\n")
    return message


class SmtpNotifier:
    """Emails the configured recipients about the configured contact events."""

    config_model = SmtpNotifierConfig

    def __init__(self, config: SmtpNotifierConfig) -> None:
        self.config = config
        if config.password_file and not Path(config.password_file).is_file():
            raise ValueError(f"password_file {config.password_file!r} does not exist")
        if config.password_env and config.password_env not in os.environ:
            raise ValueError(f"password_env: variable {config.password_env!r} is not set")

    def _password(self) -> str | None:
        if self.config.password_file:
            return Path(self.config.password_file).read_text().strip()
        if self.config.password_env:
            return os.environ.get(self.config.password_env)
        return None

    @hookimpl
    async def callmesh_contact_event(self, event: ContactEvent) -> None:
        """Send one email when ``event.kind`` is among the configured events."""
        if event.kind not in self.config.events:
            return
        await aiosmtplib.send(
            render_message(self.config, event),
            hostname=self.config.host,
            port=self.config.port,
            username=self.config.username,
            password=self._password(),
            start_tls=self.config.starttls,
            use_tls=self.config.use_tls,
            timeout=self.config.timeout_seconds,
        )
