"""r1ci: teach language models to reason with a code interpreter (R1-Code-Interpreter, arXiv 2505.21668)."""

__version__ = "0.1.0"
