"""lit_gen."""
