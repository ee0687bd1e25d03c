"""The text classifier: model, training, artifacts, inference and its commands."""
