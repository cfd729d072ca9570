"""HTTP routes. Each module's router is mounted under both /api/v1 and /v1 by `app.py`."""
