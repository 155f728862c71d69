"""The HTTP transport against a real uvicorn server."""
