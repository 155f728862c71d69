"""matplotlib for the reports: the file-only Agg backend, selected once before pyplot is imported anywhere."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display: render to files
import matplotlib.pyplot as plt

__all__ = ["plt"]
