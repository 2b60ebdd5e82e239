"""Rollup levels four apart: blocks of 64, 1024, 16384 and 65536 steps join those of 16, 256 and
4096, so each bucket of a downsampled read is one or two whole blocks.  The new levels are built
from the next finer stored level, exactly: a coarse block's count is the sum of its fine blocks'
counts, its minimum the least fine minimum (the earliest step on a tie; a block of only missing
values has NULL extremes), its maximum likewise.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# new level <- the finer level it is built from (built in this order: 65536 comes from 16384)
NEW_LEVELS = ((64, 16), (1024, 256), (16384, 4096), (65536, 16384))

# ``IS NULL`` first in each order: NULL sorts first on SQLite and last on PostgreSQL.
_BACKFILL = """
INSERT INTO metric_rollups (experiment_id, name, width, block, count, min_step, min_value, max_step, max_value)
SELECT experiment_id, name, {coarse}, coarse_block, total, min_step, min_value, max_step, max_value
FROM (
    SELECT experiment_id, name, block / {ratio} AS coarse_block,
           SUM(count) OVER (PARTITION BY experiment_id, name, block / {ratio}) AS total,
           FIRST_VALUE(min_step) OVER low AS min_step, FIRST_VALUE(min_value) OVER low AS min_value,
           FIRST_VALUE(max_step) OVER high AS max_step, FIRST_VALUE(max_value) OVER high AS max_value,
           ROW_NUMBER() OVER (PARTITION BY experiment_id, name, block / {ratio} ORDER BY block) AS n
    FROM metric_rollups
    WHERE width = {fine}
    WINDOW low AS (PARTITION BY experiment_id, name, block / {ratio}
                   ORDER BY min_value IS NULL, min_value, min_step),
           high AS (PARTITION BY experiment_id, name, block / {ratio}
                    ORDER BY max_value IS NULL, max_value DESC, max_step)
) AS fine_blocks
WHERE n = 1
"""


def upgrade() -> None:
    for coarse, fine in NEW_LEVELS:
        op.execute(_BACKFILL.format(coarse=coarse, fine=fine, ratio=coarse // fine))


def downgrade() -> None:
    widths = ", ".join(str(coarse) for coarse, _ in NEW_LEVELS)
    op.execute(f"DELETE FROM metric_rollups WHERE width IN ({widths})")
