"""``HEAD`` wherever ``GET``: the same status and headers, no body (RFC 9110 9.3.2)."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Set on the scope of a HEAD request served as GET, so an error can name the method sent.
HEAD_SCOPE_KEY = "head_request"


class HeadAsGetMiddleware:
    """Serves a ``HEAD`` request as the ``GET`` it mirrors and drops the body: no route, and
    no OpenAPI operation, needs declaring twice. The method is restored once the app returns,
    so the access log and metrics record ``HEAD``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # The scope itself, not a copy: the router records the matched route in it, which the
        # metrics read.
        scope["method"] = "GET"
        scope[HEAD_SCOPE_KEY] = True
        try:
            await self.app(scope, receive, send_without_body)
        finally:
            scope["method"] = "HEAD"
