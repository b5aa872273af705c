from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField

from app.forms import choices

TOPOLOGY_CHOICES = choices(
    [
        ("mesh", "Mesh — every peer talks to every peer"),
        ("hub_spoke", "Hub and spoke — spokes see only hubs"),
        ("hybrid", "Hybrid — spokes with endpoints also talk directly"),
    ]
)


class WanForm(FlaskForm):
    # Plain text fields: the services validate every value, so the messages match the API's.
    name = StringField("Name")
    topology = SelectField("Topology", choices=TOPOLOGY_CHOICES, default="mesh", validate_choice=False)
    tunnel_cidr = StringField("Tunnel range", default="10.0.0.0/24")
    services_cidr = StringField("Shared services range", default="10.0.5.0/24")
    nat_pool_cidr = StringField("NAT pool", default="172.16.0.0/12")
    tunnel_cidr6 = StringField("IPv6 tunnel range (dual stack)")
    services_cidr6 = StringField("IPv6 shared services range")
    # Empty on create: the service derives `wg-<WAN name>`, unique per WAN (one router, several WANs).
    interface_name = StringField("Interface name", default="", description="Empty: wg-<WAN name>")
    listen_port = StringField("Default listen port", default="51820")
    keepalive = StringField("PersistentKeepalive (s)", default="25")
    mtu = StringField("MTU", default="1420")
    mgmt_cidrs = TextAreaField("Management networks")
    dns = StringField("DNS servers for clients")
    preshared_keys = BooleanField("Preshared keys (a PresharedKey for every tunnel)")
