"""The one door to the terminal: only modules in this package import rich."""
