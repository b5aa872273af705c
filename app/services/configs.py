"""Configs as users get them: rendering, staleness by hash (DESIGN.md §5), downloads, zip, QR.

A peer's config is a pure function of the WAN. Its hash is compared with the hash of the config
the peer last downloaded (or, for MikroTik, had deployed): they differ → the peer is stale. A change
that leaves a peer's config as it was therefore never stales it.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import segno

from app.domain.model import WanSpec
from app.domain.routeros.desired import build_desired, desired_hash
from app.domain.routeros.script import render_script
from app.domain.topology import TopologyResult, build_topology
from app.domain.wireguard import RenderedConfig, config_diff, render_all, render_config
from app.models import Peer, Wan
from app.models.base import utcnow
from app.services import audit
from app.services.specs import wan_spec

PRIVATE_LINE_PREFIXES = ("PrivateKey", "PresharedKey")


@dataclass(frozen=True)
class PeerConfig:
    peer_id: int
    kind: str  # "wireguard" or "mikrotik-script"
    text: str
    sha256: str


@dataclass(frozen=True)
class WanConfigs:
    """Every peer's current config of one WAN, with its staleness."""

    topology: TopologyResult
    configs: dict[int, PeerConfig]

    def stale_ids(self, peers: list[Peer]) -> set[int]:
        return {p.id for p in peers if is_stale(p, self.configs[p.id].sha256)}


def is_stale(peer: Peer, current_hash: str) -> bool:
    """Needs (re)applying: never applied, or applied a config that is no longer current."""
    return peer.applied_config_hash != current_hash


def script_config(spec: WanSpec, peer_id: int, topology: TopologyResult, peer_name: str) -> PeerConfig:
    # A router's staleness hashes its desired state (what the script and a deploy put on it), built
    # without a management source so it does not depend on where WireWAN happens to connect from.
    desired = build_desired(spec, peer_id, topology)
    return PeerConfig(peer_id, "mikrotik-script", render_script(desired, spec.name, peer_name), desired_hash(desired))


def wan_configs(wan: Wan) -> WanConfigs:
    """Render every peer's config once (one topology build, every key decrypted in memory)."""
    spec = wan_spec(wan, secrets_for={p.id for p in wan.peers})
    topology = build_topology(spec)
    wg_ids = [p.id for p in spec.peers if p.kind != "mikrotik"]
    configs = {
        peer_id: PeerConfig(peer_id, "wireguard", r.text, r.sha256)
        for peer_id, r in render_all(spec, topology, wg_ids).items()
    }
    for peer in spec.peers:
        if peer.kind == "mikrotik":
            configs[peer.id] = script_config(spec, peer.id, topology, peer.name)
    return WanConfigs(topology, configs)


def peer_config(peer: Peer, config_type: str | None = None) -> PeerConfig:
    """One peer's config: its wg-quick file, or for MikroTik peers the RouterOS bootstrap script."""
    spec = wan_spec(peer.wan, secrets_for={peer.id})
    kind = config_type or ("mikrotik-script" if peer.kind == "mikrotik" else "wireguard")
    topology = build_topology(spec)
    if kind == "mikrotik-script":
        if peer.kind != "mikrotik":
            raise ValueError("Only MikroTik peers have a RouterOS script.")
        return script_config(spec, peer.id, topology, peer.name)
    rendered: RenderedConfig = render_config(spec, peer.id, topology)
    return PeerConfig(peer.id, "wireguard", rendered.text, rendered.sha256)


def masked(text: str) -> str:
    """The config without its secrets, kept to show what changed since it was applied."""
    out = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in PRIVATE_LINE_PREFIXES:
            line = f"{key} = <hidden>"
        elif "password=" in line:
            line = line.split("password=", 1)[0] + "password=<hidden>"
        elif "private-key=" in line:
            head, _, tail = line.partition("private-key=")
            line = head + "private-key=<hidden>" + (" " + tail.split(" ", 1)[1] if " " in tail else "")
        out.append(line)
    return "\n".join(out) + "\n"


def mark_applied(peer: Peer, config: PeerConfig, how: str) -> None:
    """Record that the device now holds `config` (download, QR scan, deploy or 'Mark applied')."""
    was_stale = is_stale(peer, config.sha256)
    peer.applied_config_hash = config.sha256
    peer.applied_config_masked = masked(config.text)
    peer.applied_at = utcnow()
    audit.record(
        how,
        "peer",
        peer.id,
        wan_id=peer.wan_id,
        summary=f"peer '{peer.name}': {config.kind} config {how.replace('-', ' ')}"
        + (" (was stale)" if was_stale else ""),
        details={"config_hash": config.sha256},
    )


def changes_since_applied(peer: Peer, config: PeerConfig) -> str:
    """Unified diff from the applied config to the current one, secrets masked on both sides."""
    if not peer.applied_config_masked:
        return ""
    return config_diff(peer.applied_config_masked, masked(config.text))


def configs_zip(wan: Wan) -> tuple[bytes, list[Peer]]:
    """Every non-MikroTik peer's config as `<peer name>.conf` in one zip; marks them applied."""
    rendered = wan_configs(wan)
    buf = io.BytesIO()
    included = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for peer in sorted(wan.peers, key=lambda p: p.name):
            if peer.kind == "mikrotik":
                continue
            config = rendered.configs[peer.id]
            info = zipfile.ZipInfo(f"{peer.name}.conf", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o600 << 16  # private keys: owner-only when unpacked
            zf.writestr(info, config.text)
            mark_applied(peer, config, "download-zip")
            included.append(peer)
    return buf.getvalue(), included


def qr_svg(text: str) -> str:
    """The config as an SVG QR code (the WireGuard mobile apps scan it)."""
    out = io.BytesIO()
    segno.make(text, error="l").save(out, kind="svg", scale=4, border=2, xmldecl=False, svgns=True)
    return out.getvalue().decode()
