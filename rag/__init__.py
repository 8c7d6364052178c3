"""Retrieval: find guide and manual excerpts, with citations, to put in front of the model."""
