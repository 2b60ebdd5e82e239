"""The training engine: a pure function from spec and data to a trained model (see ``loop``)."""

from worker.engine.loop import Progress, TrainResult, train
from worker.engine.recorder import Diverged

__all__ = ["Diverged", "Progress", "TrainResult", "train"]
