"""tasks-api: see app.py for the layout."""

# The service's name, importable without the app (the server's supervisor stays small).
SERVICE = "tasks-api"
