"""The floor for GET /health: a bare FastAPI app with one sync route, no middleware, no
settings, no logging set-up; served like the app (``gunicorn -c gunicorn.conf.py
bench.bare_app:app``). The app's /health is ``async``; a sync route adds a thread-pool hop,
so this floor includes one the app does not pay (bench/README.md)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
