"""Pytest plugins shared across test folders: broker fixtures started once per session and stopped by PID."""
