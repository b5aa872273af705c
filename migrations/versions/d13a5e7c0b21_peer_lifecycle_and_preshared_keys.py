"""peer lifecycle (enabled, expires_at) and preshared keys

Revision ID: d13a5e7c0b21
Revises: b6d1e0a7c914
Create Date: 2026-12-06 21:15:00

"""

import ipaddress

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d13a5e7c0b21"
down_revision = "b6d1e0a7c914"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("wan", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preshared_keys", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("psk_seed_enc", sa.Text(), nullable=True))

    with op.batch_alter_table("peer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_peer_expires_at"), ["expires_at"], unique=False)
        batch_op.add_column(sa.Column("tunnel_ip_num", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_peer_wan_id_tunnel_ip_num", ["wan_id", "tunnel_ip_num"], unique=False)

    peer = sa.table("peer", sa.column("id", sa.Integer()), sa.column("tunnel_ip", sa.String()), sa.column("tunnel_ip_num", sa.BigInteger()))
    conn = op.get_bind()
    for pid, tunnel_ip in conn.execute(sa.select(peer.c.id, peer.c.tunnel_ip)).all():
        conn.execute(sa.update(peer).where(peer.c.id == pid).values(tunnel_ip_num=int(ipaddress.ip_address(tunnel_ip))))


def downgrade():
    with op.batch_alter_table("peer", schema=None) as batch_op:
        batch_op.drop_index("ix_peer_wan_id_tunnel_ip_num")
        batch_op.drop_column("tunnel_ip_num")
        batch_op.drop_index(batch_op.f("ix_peer_expires_at"))
        batch_op.drop_column("expires_at")
        batch_op.drop_column("enabled")

    with op.batch_alter_table("wan", schema=None) as batch_op:
        batch_op.drop_column("psk_seed_enc")
        batch_op.drop_column("preshared_keys")
