"""Seat holds: statuses expired and released, and when a reservation was confirmed.

Revision ID: abdcde4323e8
Revises: 4cecf3dacef3

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'abdcde4323e8'
down_revision = '4cecf3dacef3'
branch_labels = None
depends_on = None

NEW_STATUSES = "status IN ('confirmed', 'cancelled', 'held', 'expired', 'released')"
OLD_STATUSES = "status IN ('confirmed', 'cancelled', 'held')"


def upgrade():
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmed_at', sa.DateTime(), nullable=True))
        batch_op.drop_constraint(op.f('ck_reservations_reservation_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_reservations_reservation_status_known'), sa.text(NEW_STATUSES))
    # Every booking made so far was confirmed when it was made.
    op.execute("UPDATE reservations SET confirmed_at = created_at WHERE status IN ('confirmed', 'cancelled')")


def downgrade():
    # Holds that never became bookings have no place in the old schema's meaning.
    op.execute("DELETE FROM reservation_seats WHERE reservation_id IN "
               "(SELECT id FROM reservations WHERE status IN ('expired', 'released'))")
    op.execute("UPDATE seats SET reservation_id = NULL WHERE reservation_id IN "
               "(SELECT id FROM reservations WHERE status IN ('expired', 'released'))")
    op.execute("UPDATE idempotency_keys SET resource_id = NULL WHERE resource_id IN "
               "(SELECT id FROM reservations WHERE status IN ('expired', 'released'))")
    op.execute("DELETE FROM reservations WHERE status IN ('expired', 'released')")
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_reservations_reservation_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_reservations_reservation_status_known'), sa.text(OLD_STATUSES))
        batch_op.drop_column('confirmed_at')
