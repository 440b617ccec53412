"""govlake."""
