"""seqclf: recurrent-network sequence classification and regression on CPUs."""

from . import datasets
from ._rnn import RNNClassifier, RNNRegressor
from ._version import __version__

__all__ = ["RNNClassifier", "RNNRegressor", "datasets", "__version__"]
