"""Peer benchmark: mmrec against Cornac and `implicit` on the same split files and one metric."""
