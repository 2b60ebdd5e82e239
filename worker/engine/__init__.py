"""The training engine: a pure function from spec and data to a trained model (see ``loop``)."""

from worker.engine.loop import Diverged, Progress, TrainResult, train

__all__ = ["Diverged", "Progress", "TrainResult", "train"]
