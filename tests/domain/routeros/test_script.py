"""The bootstrap script: whole-file goldens, the offline RouterOS linter, and injection safety."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from ipaddress import ip_network
from pathlib import Path

import pytest

from app.domain.model import MikrotikSpec
from app.domain.routeros.desired import build_desired
from app.domain.routeros.script import render_script

from .fixtures import MGMT_SOURCE, dual_stack_wan, mesh_wan, mikrotik_x, remote_a, remote_b
from .golden_util import GOLDEN, check_golden


def _find_lsp() -> str | None:
    """The offline RouterOS linter: requirements-dev.txt installs it beside this Python, else PATH."""
    beside = Path(sys.executable).parent / "routeros-lsp"
    return str(beside) if beside.is_file() else shutil.which("routeros-lsp")


LSP = _find_lsp()
NO_LSP = "routeros-lsp not found beside this Python or on PATH (pip install -r requirements-dev.txt)"


def _script(wan_changes: dict[str, object] | None = None, **x_changes: object) -> str:
    wan = mesh_wan(mikrotik_x(**x_changes), remote_a(), remote_b(), **(wan_changes or {}))
    return render_script(build_desired(wan, 1), wan.name, wan.peer(1).name)


SCRIPTS = {
    # Mesh, two remote peers (vps-a with an endpoint, home-b behind CGNAT), a plain routed LAN.
    "mesh_basic.rsc": lambda: _script(subnets=mikrotik_x().subnets[:1], services=()),
    # ... plus a LAN NAT'd into the pool (netmap pair).
    "mesh_nat.rsc": lambda: _script(services=()),
    # ... plus a published service (dst-nat + masquerade).
    "mesh_service.rsc": lambda: _script(),
    # Dual stack: /ipv6/address, IPv6 routes, IPv6 filter accepts before the defconf v6 drops.
    "dual_stack.rsc": lambda: render_script(build_desired(dual_stack_wan(), 1), "homelab", "office-mikrotik"),
    # Brought-own key (no private-key), API over TLS, management CIDRs set, WireWAN's own address.
    "byo_key_tls.rsc": lambda: render_script(
        build_desired(
            mesh_wan(
                mikrotik_x(
                    private_key=None,
                    mikrotik=MikrotikSpec(
                        host="192.168.10.1", port=8729, use_tls=True, username="wirewan", password="pw"
                    ),
                ),
                remote_a(),
                remote_b(),
                mgmt_cidrs=(ip_network("172.20.0.0/16"),),
            ),
            1,
            management_source=MGMT_SOURCE,
        ),
        "homelab",
        "office-mikrotik",
    ),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_golden_script(name: str) -> None:
    check_golden(name, SCRIPTS[name]())


@pytest.mark.skipif(LSP is None, reason=NO_LSP)
def test_golden_scripts_pass_routeros_lsp_strict() -> None:
    assert LSP is not None
    files = sorted(GOLDEN.glob("*.rsc"))
    assert len(files) >= len(SCRIPTS)
    proc = subprocess.run([LSP, "check", "--strict", *map(str, files)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(LSP is None, reason=NO_LSP)
def test_hostile_script_passes_routeros_lsp(tmp_path: Path) -> None:
    assert LSP is not None
    path = tmp_path / "hostile.rsc"
    path.write_text(_hostile_script(), encoding="ascii")
    proc = subprocess.run([LSP, "check", "--strict", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_script_is_one_block_with_commented_steps() -> None:
    text = SCRIPTS["mesh_service.rsc"]()
    lines = text.splitlines()
    body = [ln for ln in lines if not ln.startswith("#")]
    assert body[0] == "{" and body[-1] == "}"
    for step in (
        "Step 0:",
        "Step 1:",
        "Steps 2-3:",
        "Step 4:",
        "Step 5:",
        "Step 6:",
        "Step 7:",
        "Step 8:",
        "Step 9:",
        "Step 10:",
    ):
        assert sum(ln.startswith(f"# {step}") for ln in lines) == 1, step
    # Never a regex on anything but the constant tag prefix; matching is by exact comment.
    assert all('comment~"^WAN-Overlay-Manager:"' in ln for ln in lines if "~" in ln)
    # two peers x (find for add / add comment / find for set / set comment)
    assert text.count("WAN-Overlay-Manager:w7:peer-") == 8


def test_every_tagged_resource_is_found_then_added_or_set() -> None:
    text = SCRIPTS["mesh_service.rsc"]()
    for tag in set(re.findall(r'comment="(WAN-Overlay-Manager:w7:[^"]+)"', text)):
        # Found by today's tag or by the same tag before tags named their WAN (re-tagged by the set).
        old = tag.replace("w7:", "", 1)
        where = f'find where (comment="{tag}" or comment="{old}")'
        assert text.count(f":if ([:len [{where}]] = 0) do={{") == 1, tag
        assert text.count(f"set [{where}]") == 1, tag


def test_placed_adds_are_guarded() -> None:
    text = SCRIPTS["mesh_service.rsc"]()
    for var in ("inputDrop", "forwardDrop", "srcnatMasq", "srcnatTop"):
        assert text.count(f":local {var} [") == 1
        assert text.count(f"place-before=[:pick ${var} 0]") >= 1
        assert text.count(f":if ([:len ${var}] > 0) do={{") == text.count(f"place-before=[:pick ${var} 0]")


def test_byo_key_script_has_no_private_key_and_a_note() -> None:
    text = SCRIPTS["byo_key_tls.rsc"]()
    assert not [ln for ln in text.splitlines() if "private-key" in ln and not ln.startswith("# Note:")]
    assert "# Note:" in text and "brought its own key" in text
    assert 'set [find where name="api-ssl"]' in text


def test_demotion_loop_is_exact_dst_and_static_only() -> None:
    text = SCRIPTS["mesh_basic.rsc"]()
    assert (
        ":foreach r in=[find where dst-address=192.168.50.0/24 dynamic=no distance<10 "
        '!(comment~"^WAN-Overlay-Manager:")] do={ set $r distance=11 }'
    ) in text


# ---------------------------------------------------------------- injection

HOSTILE = [
    '"; /system reset',
    "$[/system reset]",
    "a\nb/system reset",
    "x\\",
    "q?$(1)\r\t\x00\x7f",
    "} /system reset {",
    "# not a comment",
]


def _hostile_script() -> str:
    bad = "".join(HOSTILE)
    x = mikrotik_x(name=bad, mikrotik=MikrotikSpec(host="h", username=bad, password=bad))
    a = remote_a(endpoint_host=bad, name=bad)
    wan = mesh_wan(x, a, remote_b(), name=bad)
    return render_script(build_desired(wan, 1), bad, bad)


_QUOTED = re.compile(r'"(?:[^"\\]|\\(?:[0-9A-F]{2}|[\\"$]))*"')
_WORD = r'[a-z-]+=(?:"__S__"|[A-Za-z0-9][A-Za-z0-9._/:,-]*|\[:pick \$[a-zA-Z]+ 0\])'
_SHAPES = [
    re.compile(p)
    for p in (
        r"# .*",
        r"[{}]",
        r"/[a-z0-9/-]+",
        r"\} else=\{",
        r":local [a-zA-Z]+ \[find where [a-z=! -]+\]",
        r':if \(\[:len \[find where (?:comment|name)="__S__"\]\] [=>] 0\) do=\{',
        r':if \(\[:len \[find where \(comment="__S__" or comment="__S__"\)\]\] [=>] 0\) do=\{',
        rf'set \[find where \(comment="__S__" or comment="__S__"\)\](?: {_WORD})+',
        r":if \(\[:len \$[a-zA-Z]+\] > 0\) do=\{",
        rf"add(?: {_WORD})+",
        rf'set \[find where (?:comment|name)="__S__"\](?: {_WORD})+',
        r":foreach r in=\[find where dst-address=[0-9a-f.:/]+ dynamic=no distance<10 "
        r'!\(comment~"__S__"\)\] do=\{ set \$r distance=11 \}',
        r':(?:log info|put) "__S__"',
        # Routes inside a managed one: a WireWAN route to the exact destination, then the demotion.
        r":foreach r in=\[find where dst-address in ([0-9a-f.:/]+) dst-address!=\1 dynamic=no routing-table=main "
        r'!\(comment~"__S__"\)\] do=\{',
        r":local shadowDst \[get \$r dst-address\]",
        r':local shadowTag "__S__"',
        r":if \(!\([0-9a-f.:]+ in \$shadowDst\)(?: && !\([0-9a-f.:]+ in \$shadowDst\))*\) do=\{",
        rf":if \(\[:len \[find where comment=\$shadowTag\]\] = 0\) do=\{{ add dst-address=\$shadowDst(?: {_WORD})+ "
        r"comment=\$shadowTag \}",
        r":if \(\[get \$r distance\] < 10\) do=\{ set \$r distance=11 \}",
    )
]


def test_hostile_text_never_yields_a_new_line_or_command() -> None:
    text = _hostile_script()
    assert "reset" in text  # the text is there, but only inside strings and comments
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        masked = _QUOTED.sub('"__S__"', stripped)
        assert '"' not in masked.replace('"__S__"', ""), line
        assert any(s.fullmatch(masked) for s in _SHAPES), line
    # Every occurrence of the hostile text sits inside a string or a comment.
    for line in text.splitlines():
        if "reset" in line and not line.lstrip().startswith("#"):
            assert "reset" not in _QUOTED.sub("", line), line


def test_hostile_interface_name_is_refused() -> None:
    with pytest.raises(ValueError):
        build_desired(mesh_wan(interface_name="wg; /system reset"), 1)


def test_non_ascii_password_is_refused_by_the_script() -> None:
    x = mikrotik_x(mikrotik=MikrotikSpec(host="h", password="pässword"))
    wan = mesh_wan(x, remote_a(), remote_b())
    with pytest.raises(ValueError, match="non-ASCII"):
        render_script(build_desired(wan, 1), "w", "p")


def test_comment_lines_cannot_smuggle_a_newline() -> None:
    text = render_script(build_desired(mesh_wan(), 1), "evil\n/system reset", "p\r\nq")
    assert "/system reset" not in [ln.strip() for ln in text.splitlines()]


def test_script_adds_exactly_what_the_api_plan_adds() -> None:
    """One desired state: the script's add lines and an empty-router plan's adds carry the same words."""
    from app.domain.routeros.plan import plan

    from .fixtures import default_router, desired_x

    d = desired_x()
    masked = re.sub(r'(password|private-key)="(?:[^"\\]|\\.)*"', r"\1=***", render_script(d, "w", "p"))
    script_adds = sorted(
        re.sub(r" place-before=\[:pick \$\w+ 0\]$", "", ln.strip())
        for ln in masked.splitlines()
        if ln.strip().startswith("add ")
    )
    # One add line per guarded branch (placed rules have two: with and without place-before).
    script_adds = sorted(set(script_adds))
    plan_adds = sorted(
        re.sub(r" place-before=\*\w+$", "", op.cli().split(" add ", 1)[1]).join(["add ", ""])
        for op in plan(d, default_router()).ops
        if op.action == "add"
    )
    assert script_adds == plan_adds
    assert len(plan_adds) == len([r for r in d.resources if r.create]) == 16


@pytest.mark.skipif(LSP is None, reason=NO_LSP)
def test_script_sparing_a_route_to_an_endpoint_inside_a_routed_lan_passes_routeros_lsp(tmp_path: Path) -> None:
    assert LSP is not None
    wan = mesh_wan(mikrotik_x(), remote_a(endpoint_host="10.20.0.1"), remote_b())
    text = render_script(build_desired(wan, 1), wan.name, "office")
    assert "    :if (!(10.20.0.1 in $shadowDst)) do={" in text.splitlines()
    path = tmp_path / "endpoint_inside.rsc"
    path.write_text(text, encoding="ascii")
    proc = subprocess.run([LSP, "check", "--strict", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
