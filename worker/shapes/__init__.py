"""The shapes world: exact renderer, captions, oracle and scoring (torch-free), and its CLI."""
