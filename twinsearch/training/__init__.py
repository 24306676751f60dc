"""Fine-tuning twin and half-twin encoders on a user's own pairs.

``choices``, ``data`` and ``verify`` are light; ``trainer`` imports torch and
sentence-transformers.
"""
