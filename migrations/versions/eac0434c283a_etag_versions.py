"""Version counters on movies and showtimes: they make the ETags of cached responses.

Revision ID: eac0434c283a
Revises: 6fbbbca6d9d5

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'eac0434c283a'
down_revision = '6fbbbca6d9d5'
branch_labels = None
depends_on = None


def upgrade():
    for table in ('movies', 'showtimes'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))


def downgrade():
    for table in ('showtimes', 'movies'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('version')
