"""Prices: ticket types and their rules, a showtime's price table, the price of a line.

A ticket's price is the showtime's price for the seat's type (``Showtime.price_of``)
run through the ticket type's rule (``TicketType.price_for``); a booking freezes
it on its line, so later price changes never touch a sold ticket.
"""

from sqlalchemy import insert, select

from errors import Conflict, Invalid, NotFound
from models import DEFAULT_TICKET_TYPE, DEFAULT_TICKET_TYPES, SEAT_TYPES, TicketType, db


def ticket_types_query():
    return select(TicketType).order_by(TicketType.position, TicketType.code)


def get_ticket_type(code: str) -> TicketType:
    ticket_type = db.session.get(TicketType, code)
    if ticket_type is None:
        raise NotFound(f"Ticket type {code!r} not found.")
    return ticket_type


def rule_columns(data: dict) -> dict:
    """price_rule with percent or amount (cents), as the model stores them."""
    if "price_rule" not in data:
        return {}
    value = data["percent"] if data["price_rule"] == "percent" else data["amount"]
    return {"price_rule": data["price_rule"], "value": value}


def create_ticket_type(data: dict) -> TicketType:
    if db.session.get(TicketType, data["code"]) is not None:
        raise Conflict(f"Ticket type {data['code']!r} exists already.")
    position = db.session.scalar(select(db.func.coalesce(db.func.max(TicketType.position), 0))) + 1
    ticket_type = TicketType(
        code=data["code"], name=data["name"], active=data["active"], position=position, **rule_columns(data)
    )
    db.session.add(ticket_type)
    db.session.commit()
    return ticket_type


def update_ticket_type(code: str, data: dict) -> TicketType:
    ticket_type = get_ticket_type(code)
    if code == DEFAULT_TICKET_TYPE and data.get("active") is False:
        raise Conflict(f"{code!r} is the ticket type of bookings that name only seats; it stays active.")
    for name, value in {**{key: data[key] for key in ("name", "active") if key in data}, **rule_columns(data)}.items():
        setattr(ticket_type, name, value)
    db.session.commit()
    return ticket_type


def bookable_ticket_types(codes) -> dict[str, TicketType]:
    """code -> active TicketType for each code; Invalid naming the unknown or inactive ones."""
    wanted = set(codes)
    found = {
        ticket_type.code: ticket_type
        for ticket_type in db.session.scalars(
            select(TicketType).where(TicketType.code.in_(wanted), TicketType.active.is_(True))
        )
    }
    unknown = sorted(wanted - set(found))
    if unknown:
        raise Invalid(
            f"Unknown or inactive ticket types: {', '.join(unknown)}.",
            errors={"tickets": [f"Unknown ticket type: {code}" for code in unknown]},
        )
    return found


def price_table(showtime) -> dict:
    """Every seat type's adult price, and seat type -> ticket type -> price (cents)."""
    ticket_types = db.session.scalars(ticket_types_query().where(TicketType.active.is_(True))).all()
    seat_prices = {seat_type: showtime.price_of(seat_type) for seat_type in SEAT_TYPES}
    return {
        "showtime_id": showtime.id,
        "seat_types": seat_prices,
        "ticket_types": ticket_types,
        "prices": {
            seat_type: {ticket_type.code: ticket_type.price_for(price) for ticket_type in ticket_types}
            for seat_type, price in seat_prices.items()
        },
    }


def add_default_ticket_types():
    """A database built from the models (tests) starts with the migration's ticket types."""
    if db.session.scalar(select(TicketType.code).limit(1)) is None:
        db.session.execute(insert(TicketType), [dict(row) for row in DEFAULT_TICKET_TYPES])
    db.session.commit()
