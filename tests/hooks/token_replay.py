"""A pass-through proxy in front of the Amazon sandbox that makes a listing repeat a next-page token.

The sandbox always hands out fresh tokens, so a test that needs Amazon to repeat one (a server
bug the paginators must not follow) puts this proxy between the hook and the sandbox: every
request and answer goes through unchanged, except that the answers of one listing, from the
``repeat_from``-th on, carry the token of the first answer instead of their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandboxes.server import serve_in_thread

_HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "content-encoding"}


class TokenReplay:
    """Which answers to rewrite: those to ``GET path`` whose body holds ``token_field``."""

    def __init__(self, upstream: str, path: str, token_field: str, repeat_from: int = 2) -> None:
        self.upstream = upstream
        self.path = path
        self.token_field = token_field
        self.repeat_from = repeat_from
        self.enabled = True
        self.answers = 0
        self.first_token: str | None = None

    def rewrite(self, body: bytes) -> bytes:
        """Put the first token seen back into this answer, once it is the ``repeat_from``-th."""
        import json

        token = _find(json.loads(body), self.token_field)
        if token is None:
            return body
        self.answers += 1
        if self.first_token is None:
            self.first_token = token
        if self.enabled and self.answers >= self.repeat_from:
            # Tokens are base64 with a signature: a plain replacement cannot touch anything else.
            return body.replace(token.encode(), self.first_token.encode())
        return body

    async def forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with httpx.AsyncClient(base_url=self.upstream, timeout=30) as client:
            answer = await client.request(
                request.method,
                request.url.path,
                params=list(request.query_params.multi_items()),
                headers=headers,
                content=await request.body(),
            )
        body = answer.content
        if request.method == "GET" and request.url.path == self.path and answer.status_code == 200:
            body = self.rewrite(body)
        out_headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        return Response(body, status_code=answer.status_code, headers=out_headers)


def _find(body: object, field: str) -> str | None:
    """The value of ``field`` anywhere in a JSON body (``pagination.nextToken``, ``payload.NextToken``)."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == field and isinstance(value, str):
                return value
            found = _find(value, field)
            if found is not None:
                return found
    return None


@contextlib.contextmanager
def token_replay_proxy(upstream: str, path: str, token_field: str, repeat_from: int = 2) -> Iterator[TokenReplay]:
    """Serve the proxy on a free port; yields the ``TokenReplay`` with ``.url`` set."""
    replay = TokenReplay(upstream, path, token_field, repeat_from)
    methods = ["GET", "POST", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{rest:path}", replay.forward, methods=methods)])
    with serve_in_thread(app) as url:
        replay.url = url  # type: ignore[attr-defined]
        yield replay
