from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField

from app.domain.model import DEFAULT_API_USERNAME
from app.forms import choices

KIND_CHOICES = choices(
    [
        ("server", "Server — a Linux box (may route a LAN)"),
        ("mikrotik", "MikroTik — RouterOS 7 router, deployed by WireWAN"),
        ("client", "Client — laptop or phone (roamer)"),
    ]
)
PROTOCOL_CHOICES = choices([("tcp", "TCP"), ("udp", "UDP")])


class PeerForm(FlaskForm):
    name = StringField("Name")
    kind = SelectField("Type", choices=KIND_CHOICES, default="server", validate_choice=False)
    is_hub = BooleanField("Hub (relays for others in hub-and-spoke and hybrid WANs)")
    endpoint = StringField("Endpoint")
    has_port_forward = BooleanField("Has port-forward upstream")
    listen_port = StringField("Listen port")
    tunnel_ip = StringField("Tunnel IP")
    tunnel_ip6 = StringField("Tunnel IPv6")
    keepalive = StringField("PersistentKeepalive override (s)")
    public_key = StringField("Public key (only if the device keeps its own private key)")
    mikrotik_host = StringField("Management host")
    mikrotik_port = StringField("API port", default="")
    mikrotik_use_tls = BooleanField("Use TLS (api-ssl)")
    mikrotik_verify_cert = BooleanField("Verify the router's certificate")
    mikrotik_username = StringField("API username", default=DEFAULT_API_USERNAME)
    mikrotik_password = PasswordField("API password")
    mikrotik_auto_deploy = BooleanField("Auto-deploy configuration changes")
    # Inverted so a form posted without the box (as before it existed) keeps the peer enabled.
    disabled = BooleanField("Disabled (out of the other peers' configs and the routers)")
    expires_at = StringField("Expires (UTC)")
    # Create form only: a first LAN this peer HOSTS.
    subnet = StringField("Local network this peer HOSTS")
    subnet_routed = BooleanField("Routed (other peers may reach it)", default=True)
    subnet_auto_nat = BooleanField("Auto-NAT if conflict")


class SubnetForm(FlaskForm):
    cidr = StringField("Network (CIDR)")
    routed = BooleanField("Routed (other peers may reach it)", default=True)
    auto_nat = BooleanField("Auto-NAT if conflict")


class ServiceForm(FlaskForm):
    name = StringField("Name")
    protocol = SelectField("Protocol", choices=PROTOCOL_CHOICES, default="tcp", validate_choice=False)
    local_ip = StringField("Local IP")
    local_port = StringField("Local port")
    shared_ip = StringField("Shared IP (empty = next free)")
    shared_port = StringField("Shared port (empty = local port)")
    local_ip6 = StringField("Local IPv6 (publishes over IPv6 too)")
    shared_ip6 = StringField("Shared IPv6 (empty = next free)")
