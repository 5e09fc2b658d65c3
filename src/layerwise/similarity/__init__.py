"""Similarity between layers: the numerics of COS and CKA (`engine`) and the measures a run's
analysis computes from them, as tidy frames (`measures`)."""
