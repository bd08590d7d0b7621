"""k-nearest neighbours for digits, one concern per module:

    classifier  KNNClassifier: the numpy search on feature rows, with scikit-learn's manners
    grid        grid_search over knn settings on the validation split
    model       KNNModel: transforms + classifier, the ensemble member (digits.member) and its file
"""
from digits.knn.classifier import KNNClassifier
from digits.knn.grid import GRID_KEYS, check_grid, grid_search, label, overridden
from digits.knn.model import KNNModel

__all__ = ["GRID_KEYS", "KNNClassifier", "KNNModel", "check_grid", "grid_search", "label", "overridden"]
