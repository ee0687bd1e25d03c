"""lstmq: batch LSTM inference over text collections (torch-free shared core)."""

__version__ = "0.1.0"
