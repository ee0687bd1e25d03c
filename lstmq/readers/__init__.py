"""The one reader of input files: sources, formats, rows, records and byte streams."""
