"""Model code: the only part of lstmq that imports torch."""
