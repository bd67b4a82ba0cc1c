"""Recommenders behind one fit/score API; importing this package registers the baselines."""

from mmrec.recommenders import knn, popularity, random  # noqa: F401  (registration side effect)
from mmrec.recommenders.base import RECOMMENDERS, Recommender
from mmrec.recommenders.factory import BASELINES, create_recommender

__all__ = ["BASELINES", "RECOMMENDERS", "Recommender", "create_recommender"]
