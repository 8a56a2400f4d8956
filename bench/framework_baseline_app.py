"""The baseline's work in FastAPI routes: the framework held constant, the ORM and the validation
layer left out. Served like the app (``gunicorn -c gunicorn.conf.py
bench.framework_baseline_app:app``) on the same database and SECRET_KEY.

Each route takes only the ``Request`` (so FastAPI validates nothing), parses the path, query or
body by hand, checks the token on the event loop, runs the raw-ASGI baseline's endpoint function
(the same SQL through the DB-API driver, the same JSON written by hand) in one call on its
thread pool, and returns the baseline's bytes and headers as a plain ``Response``. What it pays
beyond bench.baseline_app is FastAPI and Starlette: routing, the request object, the endpoint
call, exception handling and the response. What the app pays beyond it is the ORM, Pydantic and
the app's own features: app/framework is the app's distance from raw SQL with the framework
held constant (bench/README.md, "The cost ladder").
"""

from fastapi import FastAPI, Request, Response

from bench import baseline_app as baseline

app = FastAPI(openapi_url=None)


def _response(response: baseline.Response) -> Response:
    framework_response = Response(response.body, response.status)
    # The baseline's headers as they are: content type and length, security headers, ETag.
    framework_response.raw_headers = list(response.headers)
    return framework_response


@app.exception_handler(baseline.HttpError)
async def problem(_request: Request, error: baseline.HttpError) -> Response:
    return _response(baseline.problem(error))


@app.get("/health")
async def health() -> Response:  # the bench's boot check
    return _response(baseline.HEALTH)


@app.get(baseline.ITEMS_PATH)
async def list_items(request: Request) -> Response:
    claims = baseline.token_claims(request.scope)
    page, page_size = baseline.page_query(request.scope)
    return _response(await baseline.in_thread(baseline.list_items, claims, page, page_size))


@app.post(baseline.ITEMS_PATH)
async def create_item(request: Request) -> Response:
    claims = baseline.token_claims(request.scope)
    title, description = baseline.new_item(await request.body())
    return _response(await baseline.in_thread(baseline.create_item, claims, title, description))


@app.get(f"{baseline.ITEMS_PATH}/{{item_id}}")
async def read_item(request: Request) -> Response:
    item_id = baseline.path_id(request.path_params["item_id"])
    claims = baseline.token_claims(request.scope)
    return _response(await baseline.in_thread(baseline.read_item, claims, item_id))
