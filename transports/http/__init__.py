"""The HTTP transport: ``turbo-dex`` (FastAPI on uvicorn) and ``HttpClient``. See docs/http.md."""
