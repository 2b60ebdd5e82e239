"""All SQL lives here: functions taking a ``Session``, one module per table family.  They
flush but never commit; the caller's transaction (a request, a worker step) decides."""

# Primary keys are 32-bit integers on every database: an id outside this range names no row
# (and PostgreSQL would reject the comparison instead of finding nothing).
MAX_ID = 2**31 - 1


def valid_id(value: int) -> bool:
    return 0 < value <= MAX_ID

