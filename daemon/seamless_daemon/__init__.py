"""seamless-daemon: an edge speech-to-speech interpreter running SeamlessM4T v2 through ONNX Runtime."""

__version__ = "0.1.0"
