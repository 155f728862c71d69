"""The wire schema and its generated code (see README.md)."""
