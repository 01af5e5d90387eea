"""seqclf: recurrent-network sequence classification and regression on CPUs."""

from . import datasets
from ._rnn import RNNClassifier, RNNRegressor

__version__ = "0.1.0.dev0"

__all__ = ["RNNClassifier", "RNNRegressor", "datasets", "__version__"]
