"""Self-healing: heartbeats, the reconciler, redelivery caps, outages and out-of-memory splits."""
