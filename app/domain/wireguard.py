"""wg-quick configs from the topology (DESIGN.md §3, §5).

A config is a pure function of the WAN: the same WAN always gives the same bytes.

Layout::

    # WireWAN config for peer '<name>' in WAN '<wan name>'
    # config-hash: <sha256>
    [Interface]
    ...

Hash: ``sha256`` is the hex SHA-256 of the UTF-8 bytes of everything after the two header lines
(from ``[Interface]`` up to and including the final newline). The header is not hashed: renaming
the WAN or the peer itself does not make the config stale, while any change to what
``wg-quick`` reads (keys, addresses, peers, AllowedIPs, hooks, even the ``# name`` comments of
the other peers) does. ``RenderedConfig.sha256`` is the same value as the ``config-hash`` line.

No user free text ever lands raw in a line: peer names are restricted to ``[A-Za-z0-9._-]`` (any
other character becomes ``_``), the WAN display name to ``[A-Za-z0-9 ._-]``; keys, endpoints and
addresses are checked against their character sets and refused (``ValueError``) otherwise.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from app.domain.address_sets import prefix_text
from app.domain.model import IPAddress, IPNetwork, PeerSpec, ServiceSpec, WanSpec
from app.domain.topology import PeerSection, PeerView, TopologyResult, build_topology

BYOK_COMMENT = "# PrivateKey: add this device's own private key here (it never left the device)"
HASH_PREFIX = "# config-hash: "

_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]")
_WAN_NAME_BAD = re.compile(r"[^A-Za-z0-9 ._-]")
_KEY_OK = re.compile(r"[A-Za-z0-9+/]{42,43}=?")
_ENDPOINT_OK = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")
_SECRET_LINE = re.compile(r"^(\s*(?:PrivateKey|PresharedKey)\s*=\s*)(\S.*?)\s*$")
_PROTO_OK = re.compile(r"tcp|udp")
_NAME_MAX = 64


@dataclass(frozen=True)
class RenderedConfig:
    text: str
    # SHA-256 (hex) of the text after the two header lines; equals the `# config-hash:` line.
    sha256: str


def safe_name(name: str) -> str:
    """A peer name as it may appear in a comment: only [A-Za-z0-9._-]."""
    return _NAME_BAD.sub("_", name)[:_NAME_MAX] or "_"


def safe_wan_name(name: str) -> str:
    """The WAN display name reduced to [A-Za-z0-9 ._-] on one line (spaces collapsed)."""
    return " ".join(_WAN_NAME_BAD.sub("_", name).split())[:_NAME_MAX]


def _checked(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"refusing to render {what} {value!r}: unexpected characters")
    return value


def _iptables(version: int) -> str:
    return "iptables" if version == 4 else "ip6tables"


def _hostport(ip: IPAddress, port: int) -> str:
    return f"[{ip}]:{port}" if isinstance(ip, IPv6Address) else f"{ip}:{port}"


def _service_is_local(peer: PeerSpec, svc: ServiceSpec) -> bool:
    """The service runs on the peer itself (its tunnel address or loopback): no forwarding."""
    return svc.local_ip == peer.tunnel_ip or svc.local_ip.is_loopback


def _hooks(peer: PeerSpec, view: PeerView) -> tuple[list[str], list[str]]:
    """PostUp and PostDown commands of a server-kind peer (Linux router).

    One command per line; PostDown undoes every iptables rule in reverse order and leaves the
    sysctls as they are (the box may forward for other reasons; %i is gone by then anyway).
    """
    up: list[str] = []
    down: list[str] = []  # undo commands, in PostUp order; reversed at the end

    def rule(version: int, spec: str) -> None:
        tool = _iptables(version)
        up.append(f"{tool} {spec.replace('{op}', '-A')}")
        down.append(f"{tool} {spec.replace('{op}', '-D')}")

    routed = sorted((s for s in peer.subnets if s.routed), key=lambda s: (s.cidr.version, s.cidr))
    v6 = (
        any(s.cidr.version == 6 for s in routed)
        or (view.relays and any(n.version == 6 for sec in view.sections for n in sec.allowed_ips))
        or any(svc.shared_ip6 is not None and svc.local_ip6 is not None for svc in peer.services)
    )
    if view.forwards:
        up.append("sysctl -w net.ipv4.ip_forward=1")
        rule(4, "{op} FORWARD -i %i -j ACCEPT")
        rule(4, "{op} FORWARD -o %i -j ACCEPT")
        if v6:
            up.append("sysctl -w net.ipv6.conf.all.forwarding=1")
            rule(6, "{op} FORWARD -i %i -j ACCEPT")
            rule(6, "{op} FORWARD -o %i -j ACCEPT")
    for s in routed:
        if s.nat_cidr is None:
            continue
        if s.nat_cidr.version != s.cidr.version or s.nat_cidr.prefixlen != s.cidr.prefixlen:
            raise ValueError(f"NAT prefix {s.nat_cidr} does not match the size of {s.cidr}")
        rule(s.cidr.version, f"-t nat {{op}} PREROUTING -i %i -d {s.nat_cidr} -j NETMAP --to {s.cidr}")
        rule(s.cidr.version, f"-t nat {{op}} POSTROUTING -o %i -s {s.cidr} -j NETMAP --to {s.nat_cidr}")
    services = sorted(peer.services, key=lambda v: (v.shared_ip.version, v.shared_ip, v.shared_port, v.protocol, v.id))
    for svc in services:
        if svc.local_ip.version != svc.shared_ip.version:
            raise ValueError(f"service {svc.id}: {svc.shared_ip} and {svc.local_ip} are not the same IP version")
        ver = svc.shared_ip.version
        proto = _checked(svc.protocol, _PROTO_OK, "protocol")
        localnet = "sysctl -w net/ipv4/conf/%i/route_localnet=1"
        if isinstance(svc.local_ip, IPv4Address) and svc.local_ip.is_loopback and localnet not in up:
            # DNAT to 127.0.0.0/8 is dropped as a martian unless the interface allows it.
            up.append(localnet)
        rule(
            ver,
            f"-t nat {{op}} PREROUTING -i %i -d {svc.shared_ip} -p {proto} --dport {svc.shared_port} "
            f"-j DNAT --to-destination {_hostport(svc.local_ip, svc.local_port)}",
        )
        if not _service_is_local(peer, svc):
            # The LAN host may not route the overlay back through us: make replies come back by
            # giving the connection our own LAN address. Only connections DNAT'ed for this
            # service are touched.
            rule(
                ver,
                f"-t nat {{op}} POSTROUTING -d {svc.local_ip} -p {proto} --dport {svc.local_port} "
                f"-m conntrack --ctstate DNAT --ctorigdst {svc.shared_ip} -j MASQUERADE",
            )
    for svc in services:
        # The IPv6 mirror of the rules above: the same port on the shared IPv6 address, DNAT'ed to
        # the service's IPv6 target, with the same narrowed masquerade for a host on the LAN.
        if svc.shared_ip6 is None or svc.local_ip6 is None:
            continue
        proto = _checked(svc.protocol, _PROTO_OK, "protocol")
        rule(
            6,
            f"-t nat {{op}} PREROUTING -i %i -d {svc.shared_ip6} -p {proto} --dport {svc.shared_port} "
            f"-j DNAT --to-destination {_hostport(svc.local_ip6, svc.local_port)}",
        )
        if svc.local_ip6 != peer.tunnel_ip6:
            rule(
                6,
                f"-t nat {{op}} POSTROUTING -d {svc.local_ip6} -p {proto} --dport {svc.local_port} "
                f"-m conntrack --ctstate DNAT --ctorigdst {svc.shared_ip6} -j MASQUERADE",
            )
    down.reverse()
    return up, down


class _Renderer:
    """Renders configs of one WAN from one topology, sharing work between peers.

    Caches are keyed by ``id()`` of objects the topology holds (sections, prefix tuples,
    prefixes); the renderer keeps the topology alive, so those ids stay unique while it lives.
    """

    def __init__(self, wan: WanSpec, topology: TopologyResult) -> None:
        self.wan = wan
        self.topology = topology
        self.by_id = {p.id: p for p in wan.peers}
        self._net_text: dict[int, str] = {}
        self._allowed_text: dict[int, str] = {}
        self._section_text: dict[int, str] = {}
        self._peer_head: dict[int, str] = {}
        self.wan_label = safe_wan_name(wan.name) or f"#{wan.id}"

    def _allowed(self, ips: tuple[IPNetwork, ...]) -> str:
        # Direct sections share the remote peer's own prefix tuple, and relay sections share
        # most prefixes: join each tuple once, format each prefix once.
        text = self._allowed_text.get(id(ips))
        if text is None:
            cache = self._net_text
            try:
                text = ", ".join(map(cache.__getitem__, map(id, ips)))
            except KeyError:
                for net in ips:
                    if id(net) not in cache:
                        cache[id(net)] = prefix_text(net)
                text = ", ".join(map(cache.__getitem__, map(id, ips)))
            self._allowed_text[id(ips)] = text
        return text

    def _section(self, sec: PeerSection) -> str:
        text = self._section_text.get(id(sec))
        if text is not None:
            return text
        head = self._peer_head.get(sec.peer_id)
        if head is None:
            y = self.by_id[sec.peer_id]
            head = f"\n[Peer]\n# {safe_name(y.name)}\nPublicKey = {_checked(y.public_key, _KEY_OK, 'public key')}\n"
            self._peer_head[sec.peer_id] = head
        parts = [head]
        if sec.allowed_ips:
            parts.append(f"AllowedIPs = {self._allowed(sec.allowed_ips)}\n")
        if sec.endpoint is not None:
            parts.append(f"Endpoint = {_checked(sec.endpoint, _ENDPOINT_OK, 'endpoint')}\n")
        if sec.persistent_keepalive is not None:
            parts.append(f"PersistentKeepalive = {int(sec.persistent_keepalive)}\n")
        text = "".join(parts)
        self._section_text[id(sec)] = text
        return text

    def _psk_section(self, peer: PeerSpec, sec: PeerSection) -> str:
        """The section with the pair's PresharedKey last (the shared text is per remote peer)."""
        psk = self.wan.psk(peer, self.by_id[sec.peer_id])
        text = self._section(sec)
        return text if psk is None else f"{text}PresharedKey = {_checked(psk, _KEY_OK, 'preshared key')}\n"

    def body(self, peer: PeerSpec, view: PeerView) -> str:
        wan = self.wan
        address = f"{peer.tunnel_ip}/{wan.tunnel_cidr.prefixlen}"
        if peer.tunnel_ip6 is not None and wan.tunnel_cidr6 is not None:
            address += f", {peer.tunnel_ip6}/{wan.tunnel_cidr6.prefixlen}"
        lines = [
            "[Interface]",
            f"Address = {address}",
            f"ListenPort = {int(peer.listen_port)}",
        ]
        if peer.private_key is None:
            lines.append(BYOK_COMMENT)
        else:
            lines.append(f"PrivateKey = {_checked(peer.private_key, _KEY_OK, 'private key')}")
        lines.append(f"MTU = {int(wan.mtu)}")
        if wan.dns:
            lines.append("DNS = " + ", ".join(str(a) for a in wan.dns))
        if peer.kind == "server":
            up, down = _hooks(peer, view)
            lines.extend(f"PostUp = {c}" for c in up)
            lines.extend(f"PostDown = {c}" for c in down)
        lines.append("")
        if wan.psk_seed is not None:
            return "\n".join(lines) + "".join(self._psk_section(peer, sec) for sec in view.sections)
        return "\n".join(lines) + "".join(map(self._section, view.sections))

    def render(self, peer_id: int) -> RenderedConfig:
        peer = self.by_id[peer_id]
        body = self.body(peer, self.topology.view(peer_id))
        digest = hashlib.sha256(body.encode()).hexdigest()
        header = f"# WireWAN config for peer '{safe_name(peer.name)}' in WAN '{self.wan_label}'\n"
        return RenderedConfig(f"{header}{HASH_PREFIX}{digest}\n{body}", digest)


def render_config(wan: WanSpec, peer_id: int, topology: TopologyResult | None = None) -> RenderedConfig:
    """The wg-quick config of one peer (builds the topology unless given)."""
    return _Renderer(wan, topology if topology is not None else build_topology(wan)).render(peer_id)


def render_all(
    wan: WanSpec, topology: TopologyResult | None = None, peer_ids: Iterable[int] | None = None
) -> dict[int, RenderedConfig]:
    """Every peer's config (or those of `peer_ids`), keyed by peer id; the topology is built once."""
    renderer = _Renderer(wan, topology if topology is not None else build_topology(wan))
    ids = [p.id for p in wan.peers] if peer_ids is None else list(peer_ids)
    return {peer_id: renderer.render(peer_id) for peer_id in ids}


def config_hash(text: str) -> str:
    """The hash of a rendered config text (the value of its `# config-hash:` line)."""
    lines = text.split("\n", 2)
    body = lines[2] if len(lines) == 3 else ""
    return hashlib.sha256(body.encode()).hexdigest()


def _mask(lines: list[str], labels: dict[str, str]) -> list[str]:
    out = []
    for line in lines:
        m = _SECRET_LINE.match(line)
        if m is not None:
            label = labels.setdefault(m.group(2), f"<hidden {len(labels) + 1}>")
            line = f"{m.group(1)}{label}"
        out.append(line)
    return out


def config_diff(old_text: str, new_text: str) -> str:
    """Unified diff of two configs with PrivateKey/PresharedKey values masked.

    Each distinct secret gets its own label (``<hidden 1>``, ``<hidden 2>``...), so a changed
    key still shows as a changed line without revealing either value. Empty when equal.
    """
    labels: dict[str, str] = {}
    old = _mask(old_text.splitlines(), labels)
    new = _mask(new_text.splitlines(), labels)
    return "\n".join(difflib.unified_diff(old, new, "applied", "current", lineterm=""))
