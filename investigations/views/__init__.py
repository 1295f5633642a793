"""Views, split by sub-domain. Thin: objects come from access.py, changes from actions."""
