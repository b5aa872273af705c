"""session revocation, token expiry, last login, first-admin bootstrap row

Revision ID: 5ec0a1d2b3c4
Revises: 2a1ca40a1a50
Create Date: 2026-12-06 21:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5ec0a1d2b3c4"
down_revision = "2a1ca40a1a50"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_login_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False))

    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))

    op.create_table(
        "bootstrap",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_bootstrap_singleton")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_bootstrap_user_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bootstrap")),
    )
    # An instance that already has accounts has had its first registration.
    op.execute(
        'INSERT INTO bootstrap (id, user_id, created_at) SELECT 1, MIN(id), CURRENT_TIMESTAMP FROM "user" '
        'HAVING COUNT(id) > 0'
    )


def downgrade():
    op.drop_table("bootstrap")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
        batch_op.drop_column("last_login_at")
