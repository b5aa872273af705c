"""subnet prefixes as integer bounds, for overlap checks by range query; an index on the peers'
cached hash revision; the WAN's cached findings in a table of their own

Revision ID: e4b2c9a7d310
Revises: d13a5e7c0b21
Create Date: 2026-12-07 00:20:00

"""

import ipaddress

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e4b2c9a7d310"
down_revision = "d13a5e7c0b21"
branch_labels = None
depends_on = None


def _bounds(cidr):
    if not cidr:
        return None, None
    net = ipaddress.ip_network(cidr)
    if net.version != 4:
        return None, None
    return int(net.network_address), int(net.broadcast_address)


def upgrade():
    with op.batch_alter_table("subnet", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cidr_first", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("cidr_last", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("nat_first", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("nat_last", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_subnet_wan_id_cidr_first", ["wan_id", "cidr_first"], unique=False)
        batch_op.create_index("ix_subnet_wan_id_nat_first", ["wan_id", "nat_first"], unique=False)

    with op.batch_alter_table("peer", schema=None) as batch_op:
        batch_op.create_index(
            "ix_peer_wan_id_current_hash_revision", ["wan_id", "current_hash_revision"], unique=False
        )

    # The findings move out of the wan row (rewritten by every change); they are recomputed on the
    # next view, so nothing is copied.
    op.create_table(
        "wan_findings",
        sa.Column("wan_id", sa.Integer(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("shown", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["wan_id"], ["wan.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("wan_id"),
    )
    op.execute(sa.text("UPDATE wan SET derived_revision = NULL"))
    with op.batch_alter_table("wan", schema=None) as batch_op:
        batch_op.drop_column("derived_cache")

    subnet = sa.table(
        "subnet",
        sa.column("id", sa.Integer()),
        sa.column("cidr", sa.String()),
        sa.column("nat_cidr", sa.String()),
        sa.column("cidr_first", sa.BigInteger()),
        sa.column("cidr_last", sa.BigInteger()),
        sa.column("nat_first", sa.BigInteger()),
        sa.column("nat_last", sa.BigInteger()),
    )
    conn = op.get_bind()
    for sid, cidr, nat_cidr in conn.execute(sa.select(subnet.c.id, subnet.c.cidr, subnet.c.nat_cidr)).all():
        cidr_first, cidr_last = _bounds(cidr)
        nat_first, nat_last = _bounds(nat_cidr)
        conn.execute(
            sa.update(subnet)
            .where(subnet.c.id == sid)
            .values(cidr_first=cidr_first, cidr_last=cidr_last, nat_first=nat_first, nat_last=nat_last)
        )


def downgrade():
    with op.batch_alter_table("wan", schema=None) as batch_op:
        batch_op.add_column(sa.Column("derived_cache", sa.JSON(), nullable=True))
    op.execute(sa.text("UPDATE wan SET derived_revision = NULL"))
    op.drop_table("wan_findings")

    with op.batch_alter_table("peer", schema=None) as batch_op:
        batch_op.drop_index("ix_peer_wan_id_current_hash_revision")

    with op.batch_alter_table("subnet", schema=None) as batch_op:
        batch_op.drop_index("ix_subnet_wan_id_nat_first")
        batch_op.drop_index("ix_subnet_wan_id_cidr_first")
        batch_op.drop_column("nat_last")
        batch_op.drop_column("nat_first")
        batch_op.drop_column("cidr_last")
        batch_op.drop_column("cidr_first")
