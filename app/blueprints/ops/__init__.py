"""Operations pages and endpoints outside the JSON API: /metrics, webhook settings, live status
fragments and report tokens (issue 12)."""
