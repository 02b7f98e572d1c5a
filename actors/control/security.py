"""Who may use the control and ingress sockets: loopback by default, CURVE (pyzmq's authenticator) elsewhere.

Keys are ZeroMQ certificate files, as made by ``python run.py keys``: ``NAME.key`` holds the
public key (safe to share), ``NAME.key_secret`` both keys (keep private). The server loads its
``.key_secret``; clients are authorised by putting their ``.key`` files in one directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from settings import is_loopback_host

__all__ = ["CurveKeys", "CurveServer", "control_security", "generate_keypair", "ingress_security", "is_loopback",
           "load_curve", "secure_client"]


@dataclass(frozen=True, slots=True)
class CurveKeys:
    """The server's key pair and the directory of authorised client public keys."""

    public: bytes
    secret: bytes
    clients_dir: str


def is_loopback(endpoint: str) -> bool:
    """Whether an endpoint is reachable only from this machine (loopback, ipc, inproc)."""
    parts = urlsplit(endpoint)
    return parts.scheme in ("ipc", "inproc") or is_loopback_host(parts.hostname or "")


def control_security(endpoints: tuple[str, ...], secret_key_file: str, clients_dir: str) -> CurveKeys | None:
    """The CURVE keys to use, or None for plain loopback sockets.

    Raises ValueError when a non-loopback endpoint has no CURVE configured, or the keys are
    half configured or unreadable: the system must not start exposed.
    """
    if bool(secret_key_file) != bool(clients_dir):
        raise ValueError("CURVE needs both control.curve_secret_key and control.curve_clients")
    keys = load_curve(secret_key_file, clients_dir) if secret_key_file else None
    exposed = [e for e in endpoints if not is_loopback(e)]
    if exposed and keys is None:
        raise ValueError(f"refusing to bind {', '.join(exposed)}: a non-loopback control or events address "
                         "requires CURVE (set control.curve_secret_key and control.curve_clients; "
                         "make keys with 'python run.py keys')")
    return keys


def ingress_security(endpoints: tuple[str, ...], secret_key_file: str, clients_dir: str,
                     insecure: bool) -> CurveKeys | None:
    """The CURVE keys the ingress sockets need, or None for plain sockets.

    A loopback ingress is plain. Off loopback it requires CURVE with the control socket's keys
    (publishers are clients whose public keys are in ``control.curve_clients``), unless
    ``insecure`` (``ingress.insecure``, ``live --insecure-ingress``) says to accept anyone.
    Raises ValueError otherwise: the system must not start exposed.
    """
    exposed = [e for e in endpoints if not is_loopback(e)]
    if not exposed or insecure:
        return None
    if not (secret_key_file and clients_dir):
        raise ValueError(f"refusing to bind {', '.join(exposed)}: a non-loopback ingress requires CURVE (set "
                         "control.curve_secret_key and control.curve_clients; make keys with 'python run.py keys') "
                         "or --insecure-ingress to accept any publisher")
    return load_curve(secret_key_file, clients_dir)


def generate_keypair(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` and ``NAME.key_secret`` into ``directory``; refuse to overwrite."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise FileExistsError(f"{path} already exists; choose another name or directory")
    made_public, made_secret = zmq.auth.create_certificates(directory, name)
    Path(made_secret).chmod(0o600)
    return Path(made_public), Path(made_secret)


def _load(path: str, what: str) -> tuple[bytes, bytes]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load the {what} from {path}: {exc}") from exc
    if secret is None:
        raise ValueError(f"{path} holds no secret key; give the .key_secret file as the {what}")
    return public, secret


def load_curve(secret_key_file: str, clients_dir: str) -> CurveKeys:
    """Load the server keys and check the client directory; ValueError says what is wrong."""
    public, secret = _load(secret_key_file, "server secret key")
    clients = Path(clients_dir)
    if not clients.is_dir():
        raise ValueError(f"authorised client keys directory {clients_dir} does not exist")
    if not any(clients.glob("*.key")):
        raise ValueError(f"no client public keys (*.key) in {clients_dir}; nobody could connect")
    return CurveKeys(public, secret, str(clients))


class CurveServer:
    """Runs the authenticator and makes sockets CURVE servers; use from the socket's thread."""

    def __init__(self, context: zmq.Context, keys: CurveKeys) -> None:
        self.keys = keys
        self.auth = ThreadAuthenticator(context)
        self.auth.start()
        self.auth.configure_curve(domain="*", location=keys.clients_dir)

    def secure(self, sock: zmq.Socket) -> None:
        """Require CURVE on ``sock`` (before it binds)."""
        sock.curve_secretkey = self.keys.secret
        sock.curve_publickey = self.keys.public
        sock.curve_server = True

    def stop(self) -> None:
        """Stop the authenticator thread."""
        self.auth.stop()


def secure_client(sock: zmq.Socket, server_public_file: str, client_secret_file: str) -> None:
    """Make ``sock`` a CURVE client of the server whose public key is in ``server_public_file``."""
    try:
        server_public, _ = zmq.auth.load_certificate(server_public_file)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load the server public key from {server_public_file}: {exc}") from exc
    public, secret = _load(client_secret_file, "client secret key")
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public
