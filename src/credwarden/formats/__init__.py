"""Parsers and writers for the files credentials are imported from and exported to."""
