"""The SDK's version, sent in the User-Agent."""

__title__ = "chamelaion"
__version__ = "0.1.0"
