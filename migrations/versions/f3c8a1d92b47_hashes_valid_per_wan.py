"""the peers' cached config hashes are valid per WAN (Wan.derived_revision), not per peer: a
recompute then rewrites only the peers whose hash changed, not all of them

Revision ID: f3c8a1d92b47
Revises: e4b2c9a7d310
Create Date: 2026-12-07 03:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f3c8a1d92b47"
down_revision = "e4b2c9a7d310"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("peer", schema=None) as batch_op:
        batch_op.drop_index("ix_peer_wan_id_current_hash_revision")
        batch_op.drop_column("current_hash_revision")
    # Recomputed (and stored under the new rule) on the next view of each WAN.
    op.execute(sa.text("UPDATE wan SET derived_revision = NULL"))


def downgrade():
    with op.batch_alter_table("peer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("current_hash_revision", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_peer_wan_id_current_hash_revision", ["wan_id", "current_hash_revision"], unique=False
        )
    op.execute(sa.text("UPDATE wan SET derived_revision = NULL"))
