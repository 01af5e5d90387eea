"""seqclf: recurrent-network sequence classification on CPUs."""

from . import datasets
from ._rnn import RNNClassifier

__version__ = "0.1.0.dev0"

__all__ = ["RNNClassifier", "datasets", "__version__"]
