"""Initial schema: users, movies, showtimes, seats, reservations, revoked tokens.

Revision ID: 6fbbbca6d9d5
Revises: 

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6fbbbca6d9d5'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('movies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('genre', sa.String(length=50), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('poster_url', sa.String(length=500), nullable=True),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_movies'))
    )
    with op.batch_alter_table('movies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_movies_genre'), ['genre'], unique=False)
        batch_op.create_index(batch_op.f('ix_movies_title'), ['title'], unique=False)

    op.create_table('revoked_tokens',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_revoked_tokens'))
    )
    with op.batch_alter_table('revoked_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revoked_tokens_expires_at'), ['expires_at'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=32), nullable=False),
    sa.Column('username_key', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    sa.UniqueConstraint('username_key', name=op.f('uq_users_username_key'))
    )
    op.create_table('showtimes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('movie_id', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.DateTime(), nullable=False),
    sa.Column('end_time', sa.DateTime(), nullable=False),
    sa.Column('hall', sa.String(length=50), nullable=False),
    sa.Column('price_cents', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('price_cents >= 0', name=op.f('ck_showtimes_showtime_price_not_negative')),
    sa.ForeignKeyConstraint(['movie_id'], ['movies.id'], name=op.f('fk_showtimes_movie_id_movies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_showtimes'))
    )
    with op.batch_alter_table('showtimes', schema=None) as batch_op:
        batch_op.create_index('ix_showtimes_hall_start', ['hall', 'start_time'], unique=False)
        batch_op.create_index(batch_op.f('ix_showtimes_movie_id'), ['movie_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_showtimes_start_time'), ['start_time'], unique=False)

    op.create_table('reservations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('showtime_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total_cents', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('email_status', sa.String(length=16), nullable=False),
    sa.CheckConstraint("status IN ('confirmed', 'cancelled', 'held')", name=op.f('ck_reservations_reservation_status_known')),
    sa.CheckConstraint('total_cents >= 0', name=op.f('ck_reservations_reservation_total_not_negative')),
    sa.ForeignKeyConstraint(['showtime_id'], ['showtimes.id'], name=op.f('fk_reservations_showtime_id_showtimes')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_reservations_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservations'))
    )
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservations_showtime_id'), ['showtime_id'], unique=False)
        batch_op.create_index('ix_reservations_user_created', ['user_id', 'created_at'], unique=False)

    op.create_table('seats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('showtime_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=6), nullable=False),
    sa.Column('row', sa.String(length=2), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('reservation_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('number >= 1', name=op.f('ck_seats_seat_number_positive')),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservations.id'], name=op.f('fk_seats_reservation_id_reservations')),
    sa.ForeignKeyConstraint(['showtime_id'], ['showtimes.id'], name=op.f('fk_seats_showtime_id_showtimes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_seats')),
    sa.UniqueConstraint('showtime_id', 'label', name='uq_seat_showtime_label')
    )
    with op.batch_alter_table('seats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_seats_reservation_id'), ['reservation_id'], unique=False)

    op.create_table('reservation_seats',
    sa.Column('reservation_id', sa.Integer(), nullable=False),
    sa.Column('seat_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservations.id'], name=op.f('fk_reservation_seats_reservation_id_reservations')),
    sa.ForeignKeyConstraint(['seat_id'], ['seats.id'], name=op.f('fk_reservation_seats_seat_id_seats')),
    sa.PrimaryKeyConstraint('reservation_id', 'seat_id', name=op.f('pk_reservation_seats'))
    )
    with op.batch_alter_table('reservation_seats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservation_seats_seat_id'), ['seat_id'], unique=False)



def downgrade():
    with op.batch_alter_table('reservation_seats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reservation_seats_seat_id'))

    op.drop_table('reservation_seats')
    with op.batch_alter_table('seats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_seats_reservation_id'))

    op.drop_table('seats')
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_reservations_user_created')
        batch_op.drop_index(batch_op.f('ix_reservations_showtime_id'))

    op.drop_table('reservations')
    with op.batch_alter_table('showtimes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_showtimes_start_time'))
        batch_op.drop_index(batch_op.f('ix_showtimes_movie_id'))
        batch_op.drop_index('ix_showtimes_hall_start')

    op.drop_table('showtimes')
    op.drop_table('users')
    with op.batch_alter_table('revoked_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revoked_tokens_expires_at'))

    op.drop_table('revoked_tokens')
    with op.batch_alter_table('movies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_movies_title'))
        batch_op.drop_index(batch_op.f('ix_movies_genre'))

    op.drop_table('movies')
