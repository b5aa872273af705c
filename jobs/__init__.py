"""RQ job functions. Each takes ids, opens its own app context and records progress in a Job row."""
