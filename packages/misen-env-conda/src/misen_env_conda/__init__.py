"""misen-env-conda."""
