"""A random key per user, carried by every token: a token names its user, not only an id.

Revision ID: 6a70b69675ed
Revises: eac0434c283a

"""
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6a70b69675ed'
down_revision = 'eac0434c283a'
branch_labels = None
depends_on = None

users = sa.table('users', sa.column('id', sa.Integer()), sa.column('token_key', sa.String()))


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_key', sa.String(length=32), nullable=True))

    # A key of its own for every existing user (random in Python: the same on every database).
    connection = op.get_bind()
    user_ids = connection.execute(sa.select(users.c.id)).scalars().all()
    if user_ids:
        connection.execute(
            users.update()
            .where(users.c.id == sa.bindparam('user_id'))
            .values(token_key=sa.bindparam('key')),
            [{'user_id': user_id, 'key': secrets.token_hex(16)} for user_id in user_ids],
        )

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('token_key', existing_type=sa.String(length=32), nullable=False)


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('token_key')
