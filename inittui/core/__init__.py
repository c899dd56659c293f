"""The computing core of inittui. Imports torch, never textual or rich."""
