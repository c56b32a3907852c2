"""The package version: a leaf, so that modules inside the package never import its root."""

__version__ = "0.1.0"
