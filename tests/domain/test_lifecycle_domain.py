"""Pure pieces of issue 13: per-pair preshared keys, disabled peers in the topology, the export envelope."""

from __future__ import annotations

import copy
from dataclasses import replace
from ipaddress import IPv4Address, ip_network

import pytest

from app.domain import export, keys
from app.domain.model import PeerSpec, WanSpec
from app.domain.topology import build_topology, relay_peer_id
from app.domain.wireguard import render_all


def peer(i: int, **kw: object) -> PeerSpec:
    private, public = keys.generate_keypair()
    fields: dict[str, object] = {
        "id": i, "uuid": f"u{i}", "name": f"p{i}", "kind": "server", "tunnel_ip": IPv4Address(f"10.0.0.{i}"),
        "listen_port": 51820, "public_key": public, "private_key": private, "endpoint_host": f"203.0.113.{i}",
    }  # fmt: skip
    fields.update(kw)
    return PeerSpec(**fields)  # type: ignore[arg-type]


def wan(*peers: PeerSpec, **kw: object) -> WanSpec:
    return WanSpec(
        id=1, name="w", tunnel_cidr=ip_network("10.0.0.0/24"), services_cidr=ip_network("10.0.5.0/24"),  # type: ignore[arg-type]
        nat_pool_cidr=ip_network("172.16.0.0/12"), peers=peers, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_pair_psks_are_symmetric_distinct_and_follow_the_seed() -> None:
    seed = keys.generate_psk_seed()
    a, b, c = (keys.generate_keypair()[1] for _ in range(3))
    assert keys.pair_psk(seed, a, b) == keys.pair_psk(seed, b, a)
    assert len({keys.pair_psk(seed, a, b), keys.pair_psk(seed, a, c), keys.pair_psk(seed, b, c)}) == 3
    assert keys.pair_psk(keys.generate_psk_seed(), a, b) != keys.pair_psk(seed, a, b)
    assert keys.validate_public_key(keys.pair_psk(seed, a, b))  # 32 bytes of canonical base64


def test_both_ends_of_every_tunnel_share_its_psk_and_without_a_seed_nothing_changes() -> None:
    peers = (peer(1), peer(2), peer(3, endpoint_host=None, kind="client"))
    plain = render_all(wan(*peers))
    seeded = wan(*peers, psk_seed=keys.generate_psk_seed())
    with_psk = render_all(seeded)
    for pid, rendered in with_psk.items():
        lines = rendered.text.splitlines()
        assert [x for x in lines if not x.startswith("PresharedKey") and "config-hash" not in x] == [
            x for x in plain[pid].text.splitlines() if "config-hash" not in x
        ]
    for x in peers:
        for y in peers:
            if x.id < y.id:
                psk = f"PresharedKey = {seeded.psk(x, y)}"
                assert psk in with_psk[x.id].text and psk in with_psk[y.id].text


def test_a_disabled_peer_is_in_no_view_and_never_relays() -> None:
    hub, a, b = peer(1, is_hub=True), peer(2, endpoint_host=None), peer(3, endpoint_host=None)
    spec = wan(replace(hub, enabled=False), a, b, topology="hub_spoke")
    topo = build_topology(spec)
    assert topo.views[1].sections == ()
    assert all(s.peer_id != 1 for v in topo.views.values() for s in v.sections)
    assert relay_peer_id(replace(spec, peers=(a, b))) is None
    assert build_topology(spec, [1]).views[1].sections == ()
    with pytest.raises(KeyError):
        build_topology(spec, [99])


def test_the_export_envelope_opens_only_unchanged_and_with_its_passphrase() -> None:
    body = {"format": export.FORMAT, "version": export.VERSION, "exported_at": "x", "wan": {"name": "w"}, "peers": []}
    document = export.seal(body, {"peers": {}, "psk_seed": None}, "twelve chars!")
    assert export.unseal(document, "twelve chars!") == (body, {"peers": {}, "psk_seed": None})
    with pytest.raises(export.DocumentError, match="Wrong passphrase"):
        export.unseal(document, "twelve chars?")
    tampered = copy.deepcopy(document)
    tampered["wan"]["name"] = "x"
    with pytest.raises(export.DocumentError, match="Wrong passphrase, or the document was changed"):
        export.unseal(tampered, "twelve chars!")
    greedy = {**document, "secrets": document["secrets"].replace("$32768$", "$1073741824$", 1)}
    with pytest.raises(export.DocumentError, match="exported form"):
        export.unseal(greedy, "twelve chars!")
    for bad in (None, [], {"format": "other"}, {**document, "secrets": "nope"}):
        with pytest.raises(export.DocumentError):
            export.unseal(bad, "twelve chars!")
    with pytest.raises(export.ValidationError, match="at least 12"):
        export.seal(body, {}, "short")
