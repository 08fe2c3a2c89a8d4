"""seamless-export: turns a SeamlessM4T v2 checkpoint into a seamless-daemon model bundle."""

__version__ = "0.1.0"
