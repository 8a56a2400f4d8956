"""The reference for GET /health: a bare FastAPI app with one sync route, no middleware, no
settings, no logging set-up; served like the app (``gunicorn -c gunicorn.conf.py
bench.bare_app:app``). The app's /health is ``async``; a sync route adds a thread-pool hop,
so it pays one the app does not (bench/README.md)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
