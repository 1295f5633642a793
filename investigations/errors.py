class InvalidTransition(Exception):
    """The object is not in a state that allows this action (HTTP 409)."""
