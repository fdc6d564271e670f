"""The shared trainer."""
from acezoo.training.trainer import TrainingInterrupted, TrainResult, train

__all__ = ["train", "TrainResult", "TrainingInterrupted"]
