"""A throw-away network of Linux network namespaces for proving generated configs on real WireGuard.

Layout (every name starts with the run's unique prefix, so nothing here can touch anything else)::

                          <prefix>-inet  (the "internet": bridge br0, 198.18.0.0/24)
              ┌────────────────┬───────────┴───────────┬──────────────────────┐
          public peer      public peer             <prefix>-cgn  (CGNAT: 198.18.0.254 outside,
          198.18.0.1       198.18.0.2               100.64.0.1 inside, MASQUERADE, drops
              │ lan0                                unsolicited inbound)
          LAN host ns                                  ├── CGNAT peer 100.64.0.2
          (echo server)                                └── CGNAT peer 100.64.0.3

Every link is a veth pair created directly inside its two namespaces (``ip link add ... netns A
type veth peer ... netns B``), so the root namespace never gets an interface.

WireGuard: kernel WireGuard is absent, so ``wg-quick`` falls back to ``wireguard-go`` by itself.
wireguard-go keeps its control socket in the host-wide ``/run/wireguard/<interface>.sock``, so we
give every tunnel interface a name unique to this run (``<prefix>w<n>``, at most 15 characters) and
write the downloaded config to ``<that name>.conf`` (mode 600 in a mode 700 folder). We chose unique
names over ``unshare -m`` + a private tmpfs on /run/wireguard because the socket then stays
reachable: ``wg show`` and ``wg-quick down`` work from a plain ``ip netns exec``, and a leftover
socket is easy to find and remove by its exact name. wg-quick's output goes to a file, never a
pipe: a wireguard-go daemon that inherited the pipe would keep it open forever.

Teardown (:meth:`Network.close`) kills only the processes running inside our own namespaces
(``ip netns pids``), deletes only our namespaces and our sockets, and removes our work folder; it
runs even when the test failed, and keeps going when one step fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

INTERNET = "198.18.0"  # 198.18.0.0/24 on the "internet" bridge (RFC 2544 benchmarking range)
CGNAT_PUBLIC = f"{INTERNET}.254"
CGNAT_INSIDE = "100.64.0"  # the carrier's private side (RFC 6598 shared address space)
# How long a check that should succeed keeps trying. WireGuard resends an unanswered handshake
# initiation only after REKEY_TIMEOUT (5 s plus jitter): one lost initiation, or a loaded machine
# starting many `ip netns exec` at once, must not turn a working tunnel into a failure. Passing
# checks return at their first success, so this costs nothing when all is well.
POSITIVE_WAIT = 15.0
TOOLS = ("ip", "wg", "wg-quick", "wireguard-go", "iptables", "ip6tables", "ping", "curl")
TTL_RE = re.compile(r"\bttl=(\d+)")
# IPv4: "Time to live exceeded"; IPv6: "Time exceeded: Hop limit".
FROM_RE = re.compile(r"^From (\S+?):? .*(?:Time to live exceeded|Time exceeded: Hop limit)", re.MULTILINE)
PRIVATE_KEY_RE = re.compile(r"^(PrivateKey\s*=\s*)\S+", re.MULTILINE)

ECHO_SERVER = r"""
import http.server, socket, sys

BODY = open(sys.argv[3], encoding="utf-8").read()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        client = self.client_address[0].removeprefix("::ffff:")  # IPv4 on a dual-stack socket
        data = f"{BODY}\nclient={client}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # "::" listens on IPv6 and (dual-stack socket) IPv4 alike.
    address_family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET


Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
"""


class NetError(RuntimeError):
    """A harness command failed (with its output)."""


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


@dataclass
class Node:
    """A namespace with a role: a WireGuard peer, a LAN host or infrastructure."""

    name: str
    ns: str
    # Its address on the internet bridge (None behind CGNAT or on a LAN).
    public_ip: str | None = None
    # Its address behind the CGNAT or on its LAN.
    private_ip: str | None = None
    wg_iface: str | None = None
    wg_conf: Path | None = None


@dataclass
class Network:
    prefix: str
    workdir: Path = field(init=False)
    namespaces: list[str] = field(default_factory=list)
    sockets: list[Path] = field(default_factory=list)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    _hosts: int = 0
    _cgnat_hosts: int = 0
    _ifaces: int = 0
    _links: int = 0
    _cgnat: Node | None = None
    _inet: str | None = None

    def __post_init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        os.chmod(self.workdir, 0o700)
        (self.workdir / "echo_server.py").write_text(ECHO_SERVER, encoding="utf-8")

    # --- commands ----------------------------------------------------------------------------------

    def sh(self, *cmd: str, check: bool = True, timeout: float = 15) -> subprocess.CompletedProcess[str]:
        """Run a command in the root namespace (only `ip` plumbing of our own namespaces)."""
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise NetError(f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}")
        return proc

    def run(
        self, ns: str | Node, *cmd: str, check: bool = True, timeout: float = 15
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a namespace of ours."""
        name = ns.ns if isinstance(ns, Node) else ns
        assert name in self.namespaces, f"{name} is not a namespace of this run"
        return self.sh("ip", "netns", "exec", name, *cmd, check=check, timeout=timeout)

    # --- building ----------------------------------------------------------------------------------

    def namespace(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        self.sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.run(name, "ip", "link", "set", "lo", "up")
        # No ICMP rate limit in our namespaces: a fresh namespace starts without ICMP credit, and
        # first_hop() relies on a relay's "Time to live exceeded" coming back at once.
        self.run(name, "sysctl", "-qw", "net.ipv4.icmp_ratemask=0")
        # The same for ICMPv6 ("Time exceeded: Hop limit"), and no duplicate address detection: a
        # tunnel's IPv6 address is usable as soon as wg-quick added it.
        self.run(name, "sysctl", "-qw", "net.ipv6.icmp.ratelimit=0")
        self.run(name, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
        return name

    def _veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        self.sh("ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        self.run(ns_a, "ip", "link", "set", if_a, "up")
        self.run(ns_b, "ip", "link", "set", if_b, "up")

    def internet(self) -> str:
        if self._inet is None:
            ns = self.namespace("inet")
            self.run(ns, "ip", "link", "add", "br0", "type", "bridge")
            self.run(ns, "ip", "link", "set", "br0", "up")
            self._inet = ns
        return self._inet

    def _attach(self, ns: str, ip: str) -> None:
        inet = self.internet()
        self._links += 1
        port = f"p{self._links}"
        self._veth(ns, "eth0", inet, port)
        self.run(inet, "ip", "link", "set", port, "master", "br0")
        self.run(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")

    def _node(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def public_node(self, name: str) -> Node:
        """A namespace on the internet bridge with its own public address."""
        self._hosts += 1
        assert self._hosts < 250
        ns = self.namespace(name)
        ip = f"{INTERNET}.{self._hosts}"
        self._attach(ns, ip)
        return self._node(Node(name, ns, public_ip=ip))

    def cgnat(self) -> Node:
        """The carrier NAT: masquerades its customers, drops unsolicited inbound."""
        if self._cgnat is None:
            ns = self.namespace("cgn")
            self._attach(ns, CGNAT_PUBLIC)
            self.run(ns, "ip", "link", "add", "br1", "type", "bridge")
            self.run(ns, "ip", "link", "set", "br1", "up")
            self.run(ns, "ip", "addr", "add", f"{CGNAT_INSIDE}.1/24", "dev", "br1")
            self.run(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            for rule in (
                "-t nat -A POSTROUTING -o eth0 -j MASQUERADE",
                "-A FORWARD -i eth0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                "-A FORWARD -i eth0 -j DROP",
                "-A INPUT -i eth0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                "-A INPUT -i eth0 -j DROP",
            ):
                self.run(ns, "iptables", *rule.split())
            self._cgnat = Node("cgnat", ns, public_ip=CGNAT_PUBLIC, private_ip=f"{CGNAT_INSIDE}.1")
        return self._cgnat

    def cgnat_node(self, name: str) -> Node:
        """A namespace behind the carrier NAT: it can go out, nobody can come in."""
        cg = self.cgnat()
        self._cgnat_hosts += 1
        ns = self.namespace(name)
        ip = f"{CGNAT_INSIDE}.{self._cgnat_hosts + 1}"
        self._links += 1
        port = f"c{self._links}"
        self._veth(ns, "eth0", cg.ns, port)
        self.run(cg.ns, "ip", "link", "set", port, "master", "br1")
        self.run(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        self.run(ns, "ip", "route", "add", "default", "via", cg.private_ip or "")
        return self._node(Node(name, ns, private_ip=ip))

    def lan(
        self, router: Node, name: str, router_cidr: str, host_ip: str, body: str, *,
        port: int = 80, gateway: bool = True,
    ) -> Node:  # fmt: skip
        """A LAN namespace behind `router` (its interface `lan0` gets `router_cidr`, e.g.
        192.168.1.1/24) with one host at `host_ip` serving `body` plus the client address it saw.
        `gateway=False` leaves the host without a default route (it can answer its LAN only)."""
        ns = self.namespace(name)
        plen = router_cidr.split("/")[1]
        self._veth(router.ns, "lan0", ns, "eth0")
        self.run(router.ns, "ip", "addr", "add", router_cidr, "dev", "lan0")
        self.run(ns, "ip", "addr", "add", f"{host_ip}/{plen}", "dev", "eth0")
        if gateway:
            self.run(ns, "ip", "route", "add", "default", "via", router_cidr.split("/")[0])
        host = self._node(Node(name, ns, private_ip=host_ip))
        self.serve(host, "0.0.0.0", port, body)
        return host

    def serve(self, node: Node, bind: str, port: int, body: str) -> None:
        """Start an HTTP server in the node answering `body` and `client=<source address>`."""
        body_file = self.workdir / f"body-{len(self.servers)}.txt"
        body_file.write_text(body, encoding="utf-8")
        cmd = ["ip", "netns", "exec", node.ns, sys.executable, "-I", str(self.workdir / "echo_server.py"),
               bind, str(port), str(body_file)]  # fmt: skip
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.servers.append(proc)
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(bind, f"[{bind}]" if ":" in bind else bind)
        url = f"http://{host}:{port}/"
        deadline = time.monotonic() + POSITIVE_WAIT
        while True:
            if self.run(node, "curl", "-sf", "-m", "1", "-o", "/dev/null", url, check=False).returncode == 0:
                return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise NetError(f"the HTTP server in {node.ns} did not start")
            time.sleep(0.05)

    # --- WireGuard ---------------------------------------------------------------------------------

    def wg_up(self, node: Node, config_text: str) -> str:
        """Write the config as `<unique interface>.conf` (600 in a 700 folder) and wg-quick up it."""
        if node.wg_iface is None:
            self._ifaces += 1
            node.wg_iface = f"{self.prefix}w{self._ifaces}"
            assert len(node.wg_iface) <= 15
            node.wg_conf = self.workdir / "conf" / f"{node.wg_iface}.conf"
            node.wg_conf.parent.mkdir(mode=0o700, exist_ok=True)
            self.sockets.append(Path("/run/wireguard") / f"{node.wg_iface}.sock")
        assert node.wg_conf is not None
        fd = os.open(node.wg_conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(config_text)
        self._wg_quick(node, "up")
        return node.wg_iface

    def wg_down(self, node: Node) -> None:
        self._wg_quick(node, "down")

    def _wg_quick(self, node: Node, action: str) -> None:
        assert node.wg_conf is not None
        env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
        log = self.workdir / f"wg-quick-{node.wg_iface}-{action}.log"
        with open(log, "w+", encoding="utf-8") as out:
            proc = subprocess.run(
                ["ip", "netns", "exec", node.ns, "wg-quick", action, str(node.wg_conf)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=20, check=False,
            )  # fmt: skip
            out.seek(0)
            text = out.read()
        if proc.returncode != 0:
            raise NetError(f"wg-quick {action} {node.wg_conf.name} in {node.ns} failed:\n{text}")

    def wg_show(self, node: Node) -> str:
        return self.run(node, "wg", "show", node.wg_iface or "all", check=False).stdout

    def report(self) -> str:
        """Every tunnel's config (private keys masked) and `wg show`, for failure messages."""
        parts = []
        for node in self.nodes:
            if node.wg_conf is None or not node.wg_conf.exists():
                continue
            conf = PRIVATE_KEY_RE.sub(r"\1<hidden>", node.wg_conf.read_text(encoding="utf-8"))
            parts.append(f"===== {node.name} ({node.ns}, {node.wg_iface})\n{conf}\n--- wg show\n{self.wg_show(node)}")
        return "\n".join(parts)

    # --- probes ------------------------------------------------------------------------------------

    def ping(self, node: Node, dst: str, *, within: float = POSITIVE_WAIT) -> int | None:
        """The TTL of the first echo reply from `dst`, retrying (handshakes) for up to `within`
        seconds; None when nothing answered."""
        deadline = time.monotonic() + within
        while True:
            started = time.monotonic()
            proc = self.run(node, "ping", *_family(dst), "-n", "-c1", "-W1", dst, check=False)
            match = TTL_RE.search(proc.stdout)
            if proc.returncode == 0 and match:
                return int(match.group(1))
            if time.monotonic() > deadline:
                return None
            if time.monotonic() - started < 0.5:  # failed at once (e.g. ENOKEY): don't spin
                time.sleep(0.1)

    def answering(self, probes: Sequence[tuple[Node, str]], *, wait: float = 1.0) -> list[tuple[str, str]]:
        """The (node name, address) probes whose ping got an answer within `wait` seconds, all
        sent at once. For proving a path is closed: locally a handshake takes milliseconds and
        the first packet waits for it, so one ping per probe suffices."""
        for node, _ in probes:
            assert node.ns in self.namespaces
        procs = [
            (node.name, dst, subprocess.Popen(
                ["ip", "netns", "exec", node.ns, "ping", *_family(dst), "-n", "-q", "-c1", f"-W{wait}", dst],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            for node, dst in probes
        ]  # fmt: skip
        return [(name, dst) for name, dst, proc in procs if proc.wait(timeout=wait + 10) == 0]

    def first_hop(self, node: Node, dst: str, *, within: float = POSITIVE_WAIT) -> str | None:
        """Who answers a ping to `dst` sent with TTL 1: `dst` itself when the tunnel is direct,
        else the relay in between (its "Time to live exceeded")."""
        deadline = time.monotonic() + within
        while True:
            proc = self.run(node, "ping", *_family(dst), "-n", "-c1", "-W0.5", "-t1", dst, check=False)
            match = FROM_RE.search(proc.stdout)
            if match:
                return match.group(1)
            if proc.returncode == 0:
                return dst
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    def curl(self, node: Node, url: str, *, within: float = POSITIVE_WAIT) -> str | None:
        """The body at `url` fetched from inside `node`, retrying for up to `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            proc = self.run(node, "curl", "-sS", "-m", "1", url, check=False)
            if proc.returncode == 0:
                return proc.stdout
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    # --- teardown ----------------------------------------------------------------------------------

    def close(self) -> list[str]:
        """Remove everything this network made; returns the problems met (never raises)."""
        problems: list[str] = []
        for proc in self.servers:
            if proc.poll() is None:
                proc.terminate()
        for ns in self.namespaces:
            try:
                pids = self.sh("ip", "netns", "pids", ns, check=False).stdout.split()
            except Exception as exc:  # keep tearing down
                problems.append(f"{ns}: {exc}")
                continue
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGTERM)
        deadline = time.monotonic() + 3
        for ns in self.namespaces:
            while time.monotonic() < deadline and self.sh("ip", "netns", "pids", ns, check=False).stdout.split():
                time.sleep(0.05)
            for pid in self.sh("ip", "netns", "pids", ns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        for proc in self.servers:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for ns in reversed(self.namespaces):
            res = self.sh("ip", "netns", "del", ns, check=False)
            if res.returncode != 0:
                problems.append(f"ip netns del {ns}: {res.stderr.strip()}")
        for sock in self.sockets:
            try:
                sock.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                problems.append(f"{sock}: {exc}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.namespaces.clear()
        return problems


def _family(dst: str) -> tuple[str, ...]:
    """`ping -6` for an IPv6 destination (its hop limit then shows as ttl=)."""
    return ("-6",) if ":" in dst else ()


def reachable_matrix(
    net: Network, nodes: Sequence[Node], addrs: dict[str, str], *, within: float = POSITIVE_WAIT
) -> dict[tuple[str, str], int | None]:
    """TTL (or None) of a ping from every node to every other node's address, pinged in parallel."""
    pairs = [(src, dst) for src in nodes for dst in nodes if src is not dst]
    with ThreadPoolExecutor(max_workers=len(pairs) or 1) as pool:
        ttls = list(pool.map(lambda p: net.ping(p[0], addrs[p[1].name], within=within), pairs))
    return {(src.name, dst.name): ttl for (src, dst), ttl in zip(pairs, ttls, strict=True)}
