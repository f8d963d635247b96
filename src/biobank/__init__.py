"""Biobank Commons: a biobank information system and a federation for sharing specimens and data."""

__version__ = "0.1.0"
