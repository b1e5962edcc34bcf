"""Booking references, tickets (one row per issued secret), cancelled lines, door staff.

Existing reservations get a reference each; the seats of confirmed ones a ticket
each; the lines of cancelled ones the reservation's cancellation time.

Revision ID: 5e90362cbf93
Revises: abdcde4323e8

"""
import secrets
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

from models import new_reference
from tickets import secret_for, secret_hash


# revision identifiers, used by Alembic.
revision = '5e90362cbf93'
down_revision = 'abdcde4323e8'
branch_labels = None
depends_on = None

reservations = sa.table(
    'reservations',
    sa.column('id', sa.Integer()),
    sa.column('status', sa.String()),
    sa.column('cancelled_at', sa.DateTime()),
    sa.column('reference', sa.String()),
)
lines = sa.table(
    'reservation_seats',
    sa.column('reservation_id', sa.Integer()),
    sa.column('seat_id', sa.Integer()),
    sa.column('cancelled_at', sa.DateTime()),
)
tickets = sa.table(
    'tickets',
    sa.column('reservation_id', sa.Integer()),
    sa.column('seat_id', sa.Integer()),
    sa.column('nonce', sa.String()),
    sa.column('secret_hash', sa.String()),
    sa.column('created_at', sa.DateTime()),
)


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_staff', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('reservation_seats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reference', sa.String(length=8), nullable=True))
    op.create_table('tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reservation_id', sa.Integer(), nullable=False),
    sa.Column('seat_id', sa.Integer(), nullable=False),
    sa.Column('nonce', sa.String(length=32), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('checked_in_at', sa.DateTime(), nullable=True),
    sa.Column('checked_in_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['checked_in_by'], ['users.id'], name=op.f('fk_tickets_checked_in_by_users')),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservations.id'], name=op.f('fk_tickets_reservation_id_reservations')),
    sa.ForeignKeyConstraint(['seat_id'], ['seats.id'], name=op.f('fk_tickets_seat_id_seats')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_tickets_secret_hash'))
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_reservation_seat', ['reservation_id', 'seat_id'], unique=False)

    connection = op.get_bind()
    # A reference of its own for every reservation (random in Python: the same on every database).
    ids = connection.execute(sa.select(reservations.c.id)).scalars().all()
    references = set()
    while len(references) < len(ids):
        references.add(new_reference())
    if ids:
        connection.execute(
            reservations.update().where(reservations.c.id == sa.bindparam('reservation_id')).values(reference=sa.bindparam('ref')),
            [{'reservation_id': rid, 'ref': ref} for rid, ref in zip(ids, sorted(references))],
        )
    # A cancelled reservation's lines were all given back when it was.
    connection.execute(
        lines.update()
        .where(lines.c.reservation_id.in_(sa.select(reservations.c.id).where(reservations.c.status == 'cancelled')))
        .values(
            cancelled_at=sa.select(reservations.c.cancelled_at)
            .where(reservations.c.id == lines.c.reservation_id)
            .scalar_subquery()
        )
    )
    # A ticket for every seat of a confirmed reservation.
    held = connection.execute(
        sa.select(lines.c.reservation_id, lines.c.seat_id)
        .join(reservations, reservations.c.id == lines.c.reservation_id)
        .where(reservations.c.status == 'confirmed')
    ).all()
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # stored as naive UTC
    rows = []
    for reservation_id, seat_id in held:
        nonce = secrets.token_hex(16)
        rows.append({'reservation_id': reservation_id, 'seat_id': seat_id, 'nonce': nonce,
                     'secret_hash': secret_hash(secret_for(nonce))})
    if rows:
        connection.execute(tickets.insert().values(created_at=now), rows)

    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.alter_column('reference', existing_type=sa.String(length=8), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_reservations_reference'), ['reference'])


def downgrade():
    op.drop_table('tickets')
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_reservations_reference'), type_='unique')
        batch_op.drop_column('reference')
    with op.batch_alter_table('reservation_seats', schema=None) as batch_op:
        batch_op.drop_column('cancelled_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('is_staff')
