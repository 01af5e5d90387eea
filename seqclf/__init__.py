"""seqclf: recurrent-network sequence classification on CPUs."""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
