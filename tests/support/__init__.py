"""Plain helpers for the tests, one module per concept; every fixture lives in tests/conftest.py."""
