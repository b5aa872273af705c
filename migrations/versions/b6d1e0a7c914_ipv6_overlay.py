"""IPv6 overlay: WAN tunnel_cidr6 and services_cidr6, peer tunnel_ip6, service local_ip6 and shared_ip6

Revision ID: b6d1e0a7c914
Revises: 5ec0a1d2b3c4
Create Date: 2026-12-06 21:40:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b6d1e0a7c914"
down_revision = "5ec0a1d2b3c4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("wan", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tunnel_cidr6", sa.String(length=43), nullable=True))
        batch_op.add_column(sa.Column("services_cidr6", sa.String(length=43), nullable=True))

    with op.batch_alter_table("peer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tunnel_ip6", sa.String(length=39), nullable=True))
        batch_op.create_unique_constraint("uq_peer_wan_id_tunnel_ip6", ["wan_id", "tunnel_ip6"])

    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.add_column(sa.Column("local_ip6", sa.String(length=39), nullable=True))
        batch_op.add_column(sa.Column("shared_ip6", sa.String(length=39), nullable=True))
        batch_op.create_unique_constraint(
            "uq_service_wan_id_shared_ip6_shared_port_protocol", ["wan_id", "shared_ip6", "shared_port", "protocol"]
        )


def downgrade():
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.drop_constraint("uq_service_wan_id_shared_ip6_shared_port_protocol", type_="unique")
        batch_op.drop_column("shared_ip6")
        batch_op.drop_column("local_ip6")

    with op.batch_alter_table("peer", schema=None) as batch_op:
        batch_op.drop_constraint("uq_peer_wan_id_tunnel_ip6", type_="unique")
        batch_op.drop_column("tunnel_ip6")

    with op.batch_alter_table("wan", schema=None) as batch_op:
        batch_op.drop_column("services_cidr6")
        batch_op.drop_column("tunnel_cidr6")
