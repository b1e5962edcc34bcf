"""A folded hall name on showtimes: "Main" and "main" are one hall for the overlap check.

Revision ID: e4e4fdd0f06f
Revises: 6a70b69675ed

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e4e4fdd0f06f'
down_revision = '6a70b69675ed'
branch_labels = None
depends_on = None


def folded(hall):
    # models.hall_key as of this revision, copied so that the migration keeps
    # meaning what it meant when it was written.
    return " ".join(hall.split()).casefold()


def upgrade():
    with op.batch_alter_table('showtimes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hall_key', sa.String(length=150), nullable=True))

    showtimes = sa.table('showtimes', sa.column('hall', sa.String), sa.column('hall_key', sa.String))
    connection = op.get_bind()
    halls = connection.execute(sa.select(showtimes.c.hall).distinct()).scalars().all()
    if halls:
        connection.execute(
            showtimes.update().where(showtimes.c.hall == sa.bindparam('name')).values(hall_key=sa.bindparam('key')),
            [{'name': hall, 'key': folded(hall)} for hall in halls],
        )

    with op.batch_alter_table('showtimes', schema=None) as batch_op:
        batch_op.alter_column('hall_key', existing_type=sa.String(length=150), nullable=False)
        batch_op.drop_index('ix_showtimes_hall_start')
        batch_op.create_index('ix_showtimes_hall_key_start', ['hall_key', 'start_time'], unique=False)


def downgrade():
    with op.batch_alter_table('showtimes', schema=None) as batch_op:
        batch_op.drop_index('ix_showtimes_hall_key_start')
        batch_op.create_index('ix_showtimes_hall_start', ['hall', 'start_time'], unique=False)
        batch_op.drop_column('hall_key')
