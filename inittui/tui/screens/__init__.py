"""Screens (modal dialogs) of the inittui app."""
