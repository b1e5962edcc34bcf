"""Halls with seat plans, seat types, blocked seats, ticket types, priced reservation lines,
and the films' and showtimes' details a guest chooses by.

Existing hall names become halls without a plan (one per folded name, the showtimes'
hall_key, which the overlap check now reads from the hall instead), existing seats
become standard, and every existing reservation line is an adult ticket at the price
its reservation was sold for.

Revision ID: d0e44686f833
Revises: e4e4fdd0f06f

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd0e44686f833'
down_revision = 'e4e4fdd0f06f'
branch_labels = None
depends_on = None

# The ticket types a cinema starts with (models.DEFAULT_TICKET_TYPES, as of this revision).
TICKET_TYPES = [
    {'code': 'adult', 'name': 'Adult', 'price_rule': 'percent', 'value': 100, 'position': 1},
    {'code': 'child', 'name': 'Child (under 12)', 'price_rule': 'percent', 'value': 60, 'position': 2},
    {'code': 'senior', 'name': 'Senior (65+)', 'price_rule': 'amount_off', 'value': 200, 'position': 3},
    {'code': 'student', 'name': 'Student', 'price_rule': 'amount_off', 'value': 150, 'position': 4},
]


def upgrade():
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    halls = op.create_table('halls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('name_key', sa.String(length=150), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_halls')),
    sa.UniqueConstraint('name_key', name=op.f('uq_halls_name_key'))
    )
    ticket_types = op.create_table('ticket_types',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('price_rule', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('position', sa.Integer(), server_default='100', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("price_rule IN ('percent', 'amount_off', 'fixed_price')", name=op.f('ck_ticket_types_price_rule_known')),
    sa.CheckConstraint('value >= 0', name=op.f('ck_ticket_types_value_not_negative')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_ticket_types'))
    )
    op.bulk_insert(ticket_types, [{**row, 'active': True, 'created_at': now} for row in TICKET_TYPES])

    with op.batch_alter_table('movies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('age_rating', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('language', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('trailer_url', sa.String(length=500), nullable=True))

    with op.batch_alter_table('reservation_seats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seat_type', sa.String(length=16), server_default='standard', nullable=False))
        batch_op.add_column(sa.Column('ticket_type', sa.String(length=16), server_default='adult', nullable=False))
        batch_op.add_column(sa.Column('price_cents', sa.Integer(), server_default='0', nullable=False))
    # A reservation was sold at one price a seat: its total over its seats.
    op.execute(
        "UPDATE reservation_seats SET price_cents = ("
        " SELECT r.total_cents / (SELECT COUNT(*) FROM reservation_seats AS mine"
        "  WHERE mine.reservation_id = r.id)"
        " FROM reservations AS r WHERE r.id = reservation_seats.reservation_id)"
    )
    with op.batch_alter_table('reservation_seats', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_reservation_seats_line_price_not_negative'), 'price_cents >= 0')

    with op.batch_alter_table('seats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('column', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('seat_type', sa.String(length=16), server_default='standard', nullable=False))
        batch_op.add_column(sa.Column('blocked', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_check_constraint(
            op.f('ck_seats_seat_type_known'), "seat_type IN ('standard', 'premium', 'accessible', 'companion')"
        )

    # One hall per name used so far, whatever its spelling; the first one wins.
    connection = op.get_bind()
    names = {}
    for name, key in connection.execute(sa.text('SELECT hall, hall_key FROM showtimes ORDER BY id')):
        names.setdefault(key, name)
    if names:
        op.bulk_insert(halls, [
            {'name': name, 'name_key': key, 'created_at': now, 'updated_at': now}
            for key, name in names.items()
        ])
    with op.batch_alter_table('showtimes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hall_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prices', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('format', sa.String(length=16), server_default='2D', nullable=False))
        batch_op.add_column(sa.Column('audio_language', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('subtitles', sa.String(length=32), nullable=True))
    for key, name in names.items():
        connection.execute(
            sa.text('UPDATE showtimes SET hall_id = (SELECT id FROM halls WHERE name_key = :key), hall = :name'
                    ' WHERE hall_key = :key'),
            {'key': key, 'name': name},
        )
    with op.batch_alter_table('showtimes', schema=None) as batch_op:
        batch_op.alter_column('hall_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_showtimes_hall_id_halls'), 'halls', ['hall_id'], ['id'])
        batch_op.drop_index('ix_showtimes_hall_key_start')
        batch_op.drop_column('hall_key')
        batch_op.create_index('ix_showtimes_hall_id_start', ['hall_id', 'start_time'], unique=False)


def downgrade():
    with op.batch_alter_table('showtimes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hall_key', sa.String(length=150), nullable=True))
    op.execute('UPDATE showtimes SET hall_key = (SELECT name_key FROM halls WHERE halls.id = showtimes.hall_id)')
    with op.batch_alter_table('showtimes', schema=None) as batch_op:
        batch_op.alter_column('hall_key', existing_type=sa.String(length=150), nullable=False)
        batch_op.drop_index('ix_showtimes_hall_id_start')
        batch_op.create_index('ix_showtimes_hall_key_start', ['hall_key', 'start_time'], unique=False)
        batch_op.drop_constraint(batch_op.f('fk_showtimes_hall_id_halls'), type_='foreignkey')
        batch_op.drop_column('subtitles')
        batch_op.drop_column('audio_language')
        batch_op.drop_column('format')
        batch_op.drop_column('prices')
        batch_op.drop_column('hall_id')

    with op.batch_alter_table('seats', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_seats_seat_type_known'), type_='check')
        batch_op.drop_column('blocked')
        batch_op.drop_column('seat_type')
        batch_op.drop_column('column')

    with op.batch_alter_table('reservation_seats', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_reservation_seats_line_price_not_negative'), type_='check')
        batch_op.drop_column('price_cents')
        batch_op.drop_column('ticket_type')
        batch_op.drop_column('seat_type')

    with op.batch_alter_table('movies', schema=None) as batch_op:
        batch_op.drop_column('trailer_url')
        batch_op.drop_column('language')
        batch_op.drop_column('age_rating')

    op.drop_table('ticket_types')
    op.drop_table('halls')
