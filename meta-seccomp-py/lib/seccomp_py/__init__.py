"""seccomp_py: seccomp profiling for embedded Linux (the library behind the bbclasses and the CLI)."""

__version__ = "0.1.0"
