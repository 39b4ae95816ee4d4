"""Explanations of privacy decisions for engineers: one exposure, one partner, every step."""
