"""Services: load rows, call the pure domain, stage changes. The caller (view or job) commits."""
