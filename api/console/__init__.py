"""The web console: server-rendered pages over the same queries as the API and the CLI.

Readable without JavaScript; ``static/console.js`` adds live progress and uploads through the
JSON API with the session cookie. Nothing is loaded from elsewhere, so it works offline.
"""
