"""A model as the stages and the API use it: the estimator, read from a skops file (loading it runs no code),
and the features it was trained on, by name.

Training writes two files: `trainedmodel.skops`, the one every load of ours reads, and `trainedmodel.pkl`, the
course's pickle, kept for people who want it and never unpickled here (a pickle runs whatever code it holds).
skops refuses a file holding a type outside scikit-learn's and NumPy's own and the explicit TRUSTED list below.

The estimator is fitted on a bare matrix (scikit-learn's DataFrame checks cost more than a one-record
prediction). `Model` takes matrices in the contract's column order and hands the estimator the columns it was
trained on, chosen by name from the card: a version trained before a feature was added still serves and rolls
back. A version that needs a feature the contract no longer has is refused on load, naming it.
"""
from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from risk import contract
from risk.errors import IntegrityError, MissingInputError

# Types trusted beyond skops' defaults (scikit-learn estimators, NumPy arrays and scalars): none. A logistic
# regression needs nothing else; a new estimator that does names its types here, reviewed.
TRUSTED: tuple[str, ...] = ()


class Model:
    """An estimator and its features in order; `predict_proba` takes rows x contract.FEATURES. No `predict`: the
    0/1 calls come from the probabilities through risk.performance.predictions, the project's one threshold rule."""

    def __init__(self, estimator: object, features: Sequence[str], source: str = "model") -> None:
        missing = [name for name in features if name not in contract.FEATURES]
        if missing:
            raise IntegrityError(f"{source}: trained on feature(s) {missing} that the data contract does not have "
                                 f"(it has {list(contract.FEATURES)})")
        self.estimator, self.features = estimator, tuple(features)
        positions = [contract.FEATURES.index(name) for name in self.features]
        self.columns = None if self.features == contract.FEATURES else positions

    def _x(self, x: np.ndarray) -> np.ndarray:
        return x if self.columns is None else x[:, self.columns]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(self._x(x))

    @property
    def coef_(self) -> np.ndarray | None:
        """The coefficients in contract order (0 for a feature the model does not use); None if not linear."""
        coef = getattr(self.estimator, "coef_", None)
        if coef is None or self.columns is None:
            return coef
        full = np.zeros((coef.shape[0], len(contract.FEATURES)))
        full[:, self.columns] = coef
        return full


def dumps(estimator: object) -> bytes:
    import skops.io

    return skops.io.dumps(estimator)


def read(path: Path, features: Sequence[str]) -> Model:
    """The model in a skops file; IntegrityError naming the file when it holds an untrusted type or is not a
    skops file (nothing in it runs either way), MissingInputError when it is absent."""
    import skops.io

    if not path.is_file():
        raise MissingInputError(f"{path}: model not found (run training.py first)")
    data = path.read_bytes()
    try:
        untrusted = [t for t in skops.io.get_untrusted_types(data=data) if t not in TRUSTED]
        if untrusted:
            raise IntegrityError(f"{path}: refused, it holds types that are not trusted: {untrusted[:5]}")
        estimator = skops.io.loads(data, trusted=list(TRUSTED))
    except IntegrityError:
        raise
    except (zipfile.BadZipFile, ValueError, KeyError, TypeError, AttributeError, ImportError, EOFError) as exc:
        # what skops raises on a file that is not its own (JSON errors are ValueErrors): all mean "not a model"
        raise IntegrityError(f"{path}: not a readable skops model ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not callable(getattr(estimator, "predict_proba", None)):
        raise IntegrityError(f"{path}: holds a {type(estimator).__name__}, not a classifier with predict_proba")
    return Model(estimator, features, str(path))
