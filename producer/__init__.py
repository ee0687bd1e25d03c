"""Everything that feeds work in; never imports torch."""
