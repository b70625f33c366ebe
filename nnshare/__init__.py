"""nnshare."""
