"""``lstmq bench``: measurements of every stage, printed with what bounds them (``lstmq.bench.cli``)."""
