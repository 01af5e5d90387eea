"""Warnings that seqclf raises."""

__all__ = ["InconsistentVersionWarning"]


class InconsistentVersionWarning(UserWarning):
    """A model saved by another seqclf version is being loaded.

    As scikit-learn's ``InconsistentVersionWarning``: the model may load and
    predict as before, or not; refit it, or load it with the version that
    saved it.

    Parameters
    ----------
    estimator_name : str
        The class of the model.
    current_seqclf_version : str
        The version loading it.
    original_seqclf_version : str
        The version that saved it ("unknown" for files that do not say).
    """

    def __init__(self, *, estimator_name, current_seqclf_version,
                 original_seqclf_version):
        self.estimator_name = estimator_name
        self.current_seqclf_version = current_seqclf_version
        self.original_seqclf_version = original_seqclf_version

    def __str__(self):
        return (
            f"Trying to load {self.estimator_name} from seqclf version "
            f"{self.original_seqclf_version} when using version "
            f"{self.current_seqclf_version}. This might lead to breaking code "
            f"or invalid results. Use at your own risk; refitting the model "
            f"with this version is safe."
        )
