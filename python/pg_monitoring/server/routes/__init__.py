"""The server's routes, a module each; `app.py` assembles their ROUTES."""
