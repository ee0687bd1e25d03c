"""Webhooks: events of a job's life written to an outbox in the transaction that causes them
(``events``), receivers checked before anything is sent to them (``receivers``), signed bodies
(``signing``), and the workers' delivery loop that POSTs them at least once (``delivery``)."""
