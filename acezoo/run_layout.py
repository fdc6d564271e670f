"""File names of a run directory (a checkpoint), shared by the trainer and the hub (no imports)."""
from __future__ import annotations

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "STATE_FILE", "HISTORY_FILE", "METRICS_FILE", "PLOT_FILE", "CARD_FILE"]

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
PLOT_FILE = "gamma_lambda.png"
CARD_FILE = "README.md"
