"""traders."""
