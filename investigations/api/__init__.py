"""The REST API under ``/api/v1/``: thin views over ``access.py`` (who sees what) and ``actions`` (every change).

Objects come only from the chokepoints, so the API can never show what the pages would not;
input is validated by the same forms as the pages; every state change is an action.
"""
