"""infersight: diagnose LLM inference performance from GPU profiler traces."""

__version__ = "0.1.0"
