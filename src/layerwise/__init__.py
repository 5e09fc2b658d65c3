"""Layer-wise representation similarity and single-classifier multi-exit transformers.

A reproduction of Jiang, Zhou, Zhu, arXiv:2406.14479. Importing the package is cheap: nothing
here imports torch, so the Snakemake workflow can use the config helpers without it.
"""

__version__ = "0.1.0"
