"""digits-study: an example misen project (SVMs on scikit-learn's bundled handwritten digits)."""
