"""The narrow metric table and the per-experiment summary kept current beside it."""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.metrics import MAX_NAME_LENGTH
from store.models.base import Base


class Metric(Base):
    """One point.  The primary key (experiment, name, step) makes a re-sent batch harmless and
    is the index every series query reads in order.  Non-finite values are stored as NULL.

    No foreign key to ``experiments``: its per-row check cost a third of the ingest time on
    PostgreSQL.  Points are written only for experiments that exist (the worker holds a claim,
    the api checks), and ``repositories.experiments`` deletes them with their experiment."""

    __tablename__ = "metrics"

    experiment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    epoch: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Double)
    wall_time: Mapped[float] = mapped_column(Double)  # seconds since the Unix epoch


class MetricSummary(Base):
    """Last and best point of one metric of one experiment, updated with every insert."""

    __tablename__ = "metric_summaries"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_step: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)
    last_value: Mapped[float | None] = mapped_column(Double)
    last_wall_time: Mapped[float] = mapped_column(Double)
    first_wall_time: Mapped[float] = mapped_column(Double)
    best_step: Mapped[int | None] = mapped_column(BigInteger)
    best_value: Mapped[float | None] = mapped_column(Double)
    best_wall_time: Mapped[float | None] = mapped_column(Double)


# Step widths of the pre-aggregated blocks: a chart of a 100k-step series reads a few hundred
# blocks instead of every point, and each block's min and max keep spikes visible.  Levels four
# apart make every bucket of ``bucket_width`` one or two whole blocks, so a read touches at most
# ``max_points`` blocks per series up to 131,072 x (max_points // 2 - 1) steps, for 1/12 of a
# rollup row per point (16 apart: 1/15, but up to eight blocks per bucket).
ROLLUP_WIDTHS = (16, 64, 256, 1024, 4096, 16384, 65536)


class MetricRollup(Base):
    """Min and max (with their steps) of one metric over steps ``[block*width, (block+1)*width)``."""

    __tablename__ = "metric_rollups"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), primary_key=True)
    width: Mapped[int] = mapped_column(Integer, primary_key=True)
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    min_step: Mapped[int | None] = mapped_column(BigInteger)
    min_value: Mapped[float | None] = mapped_column(Double)
    max_step: Mapped[int | None] = mapped_column(BigInteger)
    max_value: Mapped[float | None] = mapped_column(Double)
