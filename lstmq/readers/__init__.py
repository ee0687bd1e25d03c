"""The one reader of input files: sources, formats, records and byte streams."""
