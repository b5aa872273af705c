"""Job pages (list, one job with its live status and log) and a MikroTik peer's Router section."""
