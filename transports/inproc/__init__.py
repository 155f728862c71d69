"""The in-process transport: clients call the gateway directly (the ceiling every wire is measured against)."""
