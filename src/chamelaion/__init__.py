"""Chamelaion: lip-sync service. The SDK lives at the top of this package."""
