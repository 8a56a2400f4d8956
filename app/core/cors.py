"""CORS whose refusals are problems like every other error."""

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from app.core.problems import problem_response


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, except that a refused preflight is a 400 problem carrying the request
    id, and none of the ``Access-Control-*`` headers: the browser must not read it as allowed."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code == 400:
                    refused = bytes(response.body).decode()
                    response = problem_response(Request(scope), 400, f"{refused}")
                    response.headers["Vary"] = "Origin"
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
