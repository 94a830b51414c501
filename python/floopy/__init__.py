"""Floopy: a self-hosted, OpenAI-compatible AI gateway."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("floopy")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
