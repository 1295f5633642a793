"""Real receivers for the ledger stream, on 127.0.0.1: a TLS syslog server and an HTTPS webhook.

Both run in a thread of the test process, behind a certificate of a CA made for the test, and
keep what they received so that tests can compare it with the ledger. They can be stopped and
started again on the same port, and told to fail, to answer slowly or to break off mid-batch.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.server
import ipaddress
import json
import re
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from custos_testing.worker import free_port

SYSLOG_LINE = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<time>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    rb'(?P<sd>\[\S+ seq="(?P<seq>\d+)" hash="(?P<hash>[0-9a-f]{64})" prev="(?P<prev>[0-9a-f]{64})"[^\]]*\]) '
    rb"\xef\xbb\xbf(?P<msg>.*)$",
    re.DOTALL,
)


@dataclass
class Certificates:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_certificates(folder: Path) -> Certificates:
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "custos test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    files = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def server_context(certificates: Certificates) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    return context


@dataclass
class Received:
    """What a receiver got: every event (duplicates kept), in arrival order."""

    events: list[dict] = field(default_factory=list)
    batches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seqs(self) -> list[int]:
        with self.lock:
            return [event["seq"] for event in self.events]

    def add(self, events: list[dict]) -> None:
        with self.lock:
            self.events.extend(events)
            self.batches += 1


class _Server:
    def __init__(self, certificates: Certificates):
        self.certificates = certificates
        self.port = free_port()
        self.received = Received()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


# --- HTTPS webhook ---------------------------------------------------------------------------


class WebhookReceiver(_Server):
    """Verifies the signature and the timestamp window, as docs/streams.md tells receivers to."""

    def __init__(self, certificates: Certificates, secret: str, *, replay_window: int = 300):
        super().__init__(certificates)
        self.secret = secret
        self.replay_window = replay_window
        self.fail_with: int | None = None  # answer this status instead of accepting
        self.delay = 0.0  # seconds to wait before answering
        self.rejected: list[str] = []
        self.requests_seen = threading.Event()
        self.httpd: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/custos/ledger"

    def verify(self, headers, body: bytes) -> str | None:
        """The receiving side's check; returns why a request is refused, or None."""
        timestamp = headers.get("X-Custos-Timestamp", "")
        given = headers.get("X-Custos-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.replay_window:
            return "stale or missing timestamp"
        expected = "v1=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given):
            return "bad signature"
        return None

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests_seen.set()
                if receiver.delay:
                    time.sleep(receiver.delay)
                problem = receiver.verify(self.headers, body)
                if problem:
                    receiver.rejected.append(problem)
                    self.send_response(401)
                elif receiver.fail_with:
                    self.send_response(receiver.fail_with)
                    if 300 <= receiver.fail_with < 400:
                        self.send_header("Location", "https://127.0.0.1:9/elsewhere")
                else:
                    receiver.received.add(json.loads(body)["events"])
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = server_context(self.certificates).wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


# --- syslog over TLS (RFC 5425 octet counting) ------------------------------------------------


def read_frames(connection: ssl.SSLSocket, limit: int | None = None) -> tuple[list[bytes], bool]:
    """Read octet-counted frames until the sender's close_notify; (frames, closed cleanly)."""
    buffer, frames = b"", []
    while limit is None or len(frames) < limit:
        try:
            chunk = connection.recv(65536)
        except ssl.SSLZeroReturnError:
            return frames, True
        except ssl.SSLEOFError:
            return frames, False  # the TCP connection ended without close_notify
        if not chunk:
            return frames, True  # close_notify (ragged EOFs raise, see wrap_socket below)
        buffer += chunk
        while b" " in buffer:
            length, rest = buffer.split(b" ", 1)
            if len(rest) < int(length):
                break
            frames.append(rest[: int(length)])
            buffer = rest[int(length) :]
            if limit is not None and len(frames) >= limit:
                return frames, False
    return frames, False


def parse_frame(frame: bytes) -> dict:
    match = SYSLOG_LINE.match(frame)
    if not match:
        raise AssertionError(f"not an RFC 5424 message: {frame[:200]!r}")
    document = json.loads(match["msg"])
    assert document["seq"] == int(match["seq"]) and document["hash"] == match["hash"].decode()
    assert document["action"][:32] == match["msgid"].decode()
    return {**document, "_pri": int(match["pri"]), "_host": match["host"].decode()}


class SyslogReceiver(_Server):
    """Reads a whole session, then answers the sender's close_notify with its own (the acknowledgement)."""

    def __init__(self, certificates: Certificates):
        super().__init__(certificates)
        self.break_after: int | None = None  # read this many frames of the next session, then drop it
        self.listener: socket.socket | None = None
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.stopping.clear()
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self.listener.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        context = server_context(self.certificates)
        while not self.stopping.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(context, raw), daemon=True).start()

    def _session(self, context: ssl.SSLContext, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            connection = context.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        limit, self.break_after = self.break_after, None
        try:
            frames, clean = read_frames(connection, limit)
            self.received.add([parse_frame(frame) for frame in frames])
            if clean:
                connection.unwrap()
            else:
                # Broken off: close without reading the rest, as a crashed receiver would.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (ssl.SSLError, OSError):
            pass
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.thread is not None:
            self.thread.join(timeout=5)
