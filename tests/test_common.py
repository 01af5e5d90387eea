"""scikit-learn's estimator checks on small RNNClassifier and RNNRegressor
configurations, and on SequenceScaler."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from seqclf import RNNClassifier, RNNRegressor
from seqclf.preprocessing import SequenceScaler


def _estimators():
    # Small and quick, but trained long enough for the checks' score
    # floors (e.g. accuracy 0.83 on a blob problem read as 2-step
    # sequences, R² 0.5 on a linear problem read as 10-step sequences).
    common = dict(max_iter=60, batch_size=32, learning_rate_init=0.01,
                  random_state=0)
    return [
        RNNClassifier("rnn", (8,), **common),
        RNNClassifier("gru", (8,), **common),
        RNNClassifier("lstm", (8,), **common),
        RNNClassifier(("gru", "rnn"), (6, 4), bidirectional=True, **common),
        RNNRegressor("rnn", (8,), **common),
        RNNRegressor("gru", (8,), **common),
        RNNRegressor("lstm", (8,), **common),
        RNNRegressor(("gru", "rnn"), (6, 4), bidirectional=True, **common),
        SequenceScaler(),
        SequenceScaler(with_mean=False),
    ]


def _expected_failed_checks(estimator):
    return {}


@parametrize_with_checks(_estimators(),
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
