"""mmrec: a multimodal recommender system (images, text, numeric metadata, interactions)."""

__version__ = "0.1.0"
