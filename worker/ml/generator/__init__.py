"""The text-to-image generator: model, training, artifacts, inference and its commands."""
