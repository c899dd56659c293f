"""Widgets of the inittui app."""
