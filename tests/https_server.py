"""Real local HTTPS servers for tests, signed by a throwaway test CA.

``local_ca()`` generates (once per process, with ``cryptography``) a CA and a server
certificate for ``127.0.0.1`` / ``localhost``, and writes them to a temporary directory:
point ``REQUESTS_CA_BUNDLE`` at ``local_ca().ca_path`` so that requests (and MSAL, given a
requests session) trust the servers, and only them.

``HttpsServer`` is a threaded HTTPS server whose routes the test registers::

    with HttpsServer() as crm:
        crm.route("PATCH", re.compile(r"/api/data/v9\\.2/accounts\\(.+\\)"), Reply(204))
        crm.script("GET", "/ping", Reply(503), Reply(200, body={"ok": True}))  # in turn, then the last
        crm.route("POST", "/echo", lambda request: Reply(200, body=request.json()))
        ...
        crm.requests              # every request received: method, path, query, headers, body

A route answers with a fixed ``Reply``, a script of replies (one per request, the last one
repeated), or a handler called with the ``Recorded`` request. A request no route matches is
recorded and answered 404. ``Reply(delay=...)`` holds the answer back (to provoke client
timeouts); ``stop()`` releases held answers.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import ipaddress
import json
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# --------------------------------------------------------------------------- the test CA


@dataclass(frozen=True)
class LocalCA:
    """PEM files of a throwaway CA and of a server certificate it signed (127.0.0.1, localhost)."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    directory: Path
    ca_path: Path  # the CA certificate: what REQUESTS_CA_BUNDLE should name
    cert_path: Path  # the server certificate followed by the CA (the chain a server presents)
    key_path: Path  # the server's private key

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Holdfast tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@cache
def local_ca() -> LocalCA:
    """The process's test CA and server certificate, generated on first use."""
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(minutes=5), now + dt.timedelta(days=2)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Holdfast test CA (throwaway)")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    directory = Path(tempfile.mkdtemp(prefix="holdfast-test-ca-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_pem)
    cert_path = directory / "server-chain.pem"
    cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    key_path = directory / "server-key.pem"
    key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return LocalCA(directory, ca_path, cert_path, key_path)


# --------------------------------------------------------------------------- requests and replies


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.monotonic()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body, one value per name."""
        return {name: values[-1] for name, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass(frozen=True)
class Reply:
    """A scripted answer. ``body``: bytes or str as is; anything else is sent as JSON."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to hold the answer back

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.body is None:
            return b"", headers
        if isinstance(self.body, bytes):
            return self.body, headers
        if isinstance(self.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return self.body.encode(), headers
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return json.dumps(self.body).encode(), headers


Handler = Callable[[Recorded], Reply]
PathPattern = str | re.Pattern[str]


@dataclass
class _Route:
    method: str
    path: PathPattern
    answer: Handler

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and _path_matches(self.path, path)


def _path_matches(pattern: PathPattern, path: str) -> bool:
    return path == pattern if isinstance(pattern, str) else pattern.fullmatch(path) is not None


def _always(reply: Reply) -> Handler:
    def answer(_request: Recorded) -> Reply:
        return reply

    return answer


class _Script:
    """Replies in turn; the last one is repeated."""

    def __init__(self, replies: tuple[Reply, ...]) -> None:
        if not replies:
            raise ValueError("a script needs at least one reply")
        self._replies = list(replies)
        self._lock = threading.Lock()

    def __call__(self, request: Recorded) -> Reply:
        with self._lock:
            return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]


# --------------------------------------------------------------------------- the server


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: HttpsServer) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the connection's own thread, so that a client
        # that refuses the certificate fails alone (and is counted) without stalling the others.
        try:
            tls = self.owner.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.owner._count_tls_failure(error)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            with contextlib.suppress(OSError):
                tls.close()


class HttpsServer:
    """A threaded HTTPS server on 127.0.0.1 with a certificate from ``local_ca()``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.ca = local_ca()
        self.tls_context = self.ca.server_context()
        self.requests: list[Recorded] = []
        self.tls_failures: list[str] = []
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        owner = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # an idle keep-alive connection is closed after this
            disable_nagle_algorithm = True  # no delayed-ACK stalls between headers and body

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query, keep_blank_values=True),
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                    at=time.monotonic(),
                )
                reply = owner._answer(recorded)
                if reply.delay and owner._stopping.wait(reply.delay):
                    self.close_connection = True
                    return
                payload, headers = reply.encoded()
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        self.httpd = _TLSServer((host, 0), RequestHandler, self)
        self.host = host
        self.port: int = self.httpd.server_address[1]
        self.url = f"https://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, name=f"https-{self.port}", daemon=True
        )
        self._started = False

    # -- routes

    def route(self, method: str, path: PathPattern, answer: Reply | Handler) -> HttpsServer:
        """Answer ``method path`` (exact path, or a regex matched in full) with a reply or a handler.

        A later route for the same method and path replaces the earlier one.
        """
        handler = _always(answer) if isinstance(answer, Reply) else answer
        method = method.upper()
        with self._lock:
            self._routes = [r for r in self._routes if not (r.method == method and r.path == path)]
            self._routes.append(_Route(method, path, handler))
        return self

    def script(self, method: str, path: PathPattern, *replies: Reply) -> HttpsServer:
        """Answer ``replies`` in turn, one per request; the last one is repeated."""
        return self.route(method, path, _Script(replies))

    def _answer(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            route = next((r for r in reversed(self._routes) if r.matches(request.method, request.path)), None)
        if route is None:
            return Reply(404, {"error": "no_route", "message": f"No route for {request.method} {request.path}."})
        try:
            return route.answer(request)
        except Exception as error:  # a broken handler is the test's bug: say so in the answer
            return Reply(599, {"error": "handler_failed", "message": repr(error)})

    # -- what was received

    def received(self, method: str | None = None, path: PathPattern | None = None) -> list[Recorded]:
        """Requests received, optionally only those for ``method`` and ``path``."""
        with self._lock:
            requests = list(self.requests)
        return [
            r
            for r in requests
            if (method is None or r.method == method.upper()) and (path is None or _path_matches(path, r.path))
        ]

    def clear(self) -> None:
        with self._lock:
            self.requests = []
            self.tls_failures = []

    def wait_for_tls_failures(self, count: int = 1, timeout: float = 5.0) -> list[str]:
        """The handshakes that failed, once there are ``count`` (the server sees them after the client has gone)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                failures = list(self.tls_failures)
            if len(failures) >= count or time.monotonic() >= deadline:
                return failures
            time.sleep(0.01)

    def _count_tls_failure(self, error: BaseException) -> None:
        with self._lock:
            self.tls_failures.append(f"{type(error).__name__}: {error}")

    # -- life cycle

    def start(self) -> HttpsServer:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._started:
            self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> HttpsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def closed_port(host: str = "127.0.0.1") -> int:
    """A local port nothing listens on (bound, then released): for 'unreachable' tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


# --------------------------------------------------------------------------- an Entra ID tenant


def serve_tenant(server: HttpsServer, tenant: str, token: Reply | Handler) -> str:
    """Stand up an OAuth2 authority for ``tenant`` on ``server``, as MSAL needs it.

    Serves the tenant's OpenID configuration at ``/{tenant}/v2.0/.well-known/openid-configuration``
    (MSAL reads the token endpoint from it) and answers the token endpoint
    ``/{tenant}/oauth2/v2.0/token`` with ``token``. Returns the token endpoint's path.
    """
    base = f"{server.url}/{tenant}"
    server.route(
        "GET",
        f"/{tenant}/v2.0/.well-known/openid-configuration",
        Reply(
            200,
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "token"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "tenant_region_scope": "EU",
            },
        ),
    )
    token_path = f"/{tenant}/oauth2/v2.0/token"
    server.route("POST", token_path, token)
    return token_path


def token_reply(access_token: str, expires_in: int = 3599) -> Reply:
    """A successful client-credentials answer."""
    return Reply(
        200,
        {"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": access_token},
    )
