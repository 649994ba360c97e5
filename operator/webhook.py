"""The admission webhook's plumbing: TLS and how the API server reaches it.

The checks themselves are :func:`admission_problems`: the same cross-resource validator as
``callmesh validate``, run on the incoming object together with the rest of its namespace.
A reference to an object that does not exist *yet* is returned as a warning, not a
rejection: ``kubectl apply -f folder/`` creates files in name order, so a ContactCenter
routinely arrives before the IVRFlows it names; such an object is admitted and reported
Degraded in its status until the reference resolves.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import kopf
from callmesh.operator import status as st

from callmesh.api.problems import Problem
from callmesh.api.validate import check


def admission_problems(
    incoming: Mapping[str, Any], others: Sequence[Mapping[str, Any]]
) -> tuple[list[Problem], list[Problem]]:
    """(rejections, warnings) for ``incoming`` validated with the rest of its namespace."""
    meta = incoming.get("metadata", {})
    key = (incoming.get("kind"), meta.get("name"))
    objects = [o for o in others if (o.get("kind"), o.get("metadata", {}).get("name")) != key]
    problems, _ = check([*objects, incoming])
    mine = [p for p in problems if (p.kind, p.name) == key]
    warnings = [p for p in mine if st.missing_reference(p) is not None]
    return [p for p in mine if p not in warnings], warnings


def self_signed(hostnames: Sequence[str], directory: Path) -> tuple[Path, Path]:
    """A self-signed server certificate for ``hostnames``, written as tls.crt and tls.key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    sans: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class ServiceWebhookServer(kopf.WebhookServer):
    """kopf's HTTPS webhook server, announced to the API server through a Service.

    kopf announces a URL; an API server usually cannot resolve ``*.svc`` names, so the
    ValidatingWebhookConfiguration names the operator's Service instead (port 443).
    """

    def __init__(self, *, service: str, namespace: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.service_namespace = namespace

    async def __call__(self, fn: Any) -> AsyncIterator[kopf.WebhookClientConfig]:
        async for config in super().__call__(fn):
            announced = kopf.WebhookClientConfig(
                service=kopf.WebhookClientConfigService(
                    name=self.service, namespace=self.service_namespace, port=443, path=""
                )
            )
            if "caBundle" in config:
                announced["caBundle"] = config["caBundle"]
            yield announced


def webhook_server(
    port: int, service: str | None, namespace: str | None, cert_dir: Path | None
) -> kopf.WebhookServer:
    """The webhook server for ``--webhook-port``.

    With ``service`` (the chart passes it), the server speaks HTTPS with the certificate in
    ``cert_dir`` (``tls.crt``/``tls.key``, e.g. from cert-manager) or a self-signed one
    generated at start, and kopf writes the ValidatingWebhookConfiguration pointing at the
    Service with that CA. Without it, plain HTTP on ``port`` (local development and tests).
    """
    if service is None or namespace is None:
        return kopf.WebhookServer(addr="127.0.0.1", port=port, insecure=True)
    if cert_dir is not None and (cert_dir / "tls.crt").exists():
        cert, key = cert_dir / "tls.crt", cert_dir / "tls.key"
    else:
        hostnames = [f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]
        cert, key = self_signed(hostnames, Path(tempfile.mkdtemp(prefix="callmesh-webhook-")))
    return ServiceWebhookServer(
        service=service,
        namespace=namespace,
        addr="0.0.0.0",
        port=port,
        certfile=str(cert),
        pkeyfile=str(key),
    )
