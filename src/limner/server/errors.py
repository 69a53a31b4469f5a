"""Every error leaves the service in OpenAI's envelope ``{"error": {message, type, param, code}}``,
with OpenAI's status codes, and never with a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from limner.errors import LimnerError, ModerationBlocked

log = logging.getLogger("limner.server")

TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "requests",
    499: "cancelled",
    500: "server_error",
    503: "server_error",
}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # moderation_details on moderation_blocked
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """The OpenAI error envelope, as the OpenAPI document shows it."""

    error: ErrorDetail


# Every /v1 route documents the envelope for its errors (and so FastAPI adds no 422 of its own:
# validation errors leave as 400).
ERROR_RESPONSES: dict[int | str, dict] = {
    "4XX": {"model": ErrorResponse, "description": "Client error (OpenAI error envelope)"},
    "5XX": {"model": ErrorResponse, "description": "Server error (OpenAI error envelope)"},
}


def envelope(
    status: int,
    message: str,
    type_: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict | None = None,
    **extra: object,
) -> JSONResponse:
    body = {
        "error": {
            "message": message,
            "type": type_ or TYPES.get(status, "invalid_request_error"),
            "param": param,
            "code": code,
            **extra,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def error_object(exc: LimnerError, request_id: str = "-") -> dict:
    """The envelope's inner object for ``exc`` — for HTTP answers and for MCP tool errors alike."""
    message = exc.message
    if exc.status >= 500 and exc.status != 503:
        # server-side failures (a checkpoint that will not load …) name files and folders of
        # the server: they go to the log, the caller gets the request id to quote
        log.error("request failed (%s): %s", request_id, exc.message)
        message = "The server had an error while processing your request."
    body: dict[str, object] = {"message": message, "type": exc.type, "param": exc.param, "code": exc.code}
    if isinstance(exc, ModerationBlocked):
        body["moderation_details"] = {"moderation_stage": exc.stage, "category": exc.category}
    return body


def install(app: FastAPI) -> None:
    @app.exception_handler(LimnerError)
    async def limner_error(request: Request, exc: LimnerError):
        request.state.error_code = exc.code  # for the error metrics
        from limner.server.web.auth import NotSignedIn

        if isinstance(exc, NotSignedIn) and request.method == "GET" and not request.url.path.startswith("/v1"):
            return RedirectResponse("/signin", status_code=303)
        headers = {}
        if getattr(exc, "retry_after", None):
            headers["Retry-After"] = str(exc.retry_after)  # type: ignore[attr-defined]
        body = error_object(exc, getattr(request.state, "request_id", "-"))
        return JSONResponse({"error": body}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        request.state.error_code = "invalid_value"
        err = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in err.get("loc", []) if p not in ("body", "query", "path", "header")]
        param = ".".join(loc) or None
        from limner.server.web.pages import is_page, render_page

        if is_page(request):  # a person sent a form: answer with a page, not JSON
            what = {"prompt": "The prompt is too long or empty."}.get(param or "", f"The form's {param} is not valid.")
            return await run_in_threadpool(render_page, request, "badrequest.html", 400, message=what)
        if param is None and err.get("type") == "model_attributes_type":
            return envelope(
                400, "The request body must be a JSON object.", "invalid_request_error", None, "invalid_value"
            )
        if err.get("type") == "json_invalid":
            return envelope(
                400,
                "We could not parse the JSON body of your request: it is not valid JSON.",
                "invalid_request_error",
                None,
                "invalid_json",
            )
        if err.get("type") == "extra_forbidden":
            message = f"Unknown parameter: '{param}'."
            code = "unknown_parameter"
        elif err.get("type") == "missing":
            message = f"Missing required parameter: '{param}'."
            code = "missing_required_parameter"
        else:
            message = f"Invalid value for '{param}': {err.get('msg', 'invalid')}."
            code = "invalid_value"
        return envelope(400, message, "invalid_request_error", param, code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:  # the body limit, counted while the body streamed in
            from limner.server.body_limit import body_limit, too_large

            limit = body_limit(request.app.state.settings, request.url.path)
            return envelope(413, too_large(limit), code="request_too_large")
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # FastAPI's words
            json_body = request.headers.get("content-type", "").startswith("application/json")
            return envelope(
                400,
                "We could not parse the body of your request: "
                + ("it is not valid JSON in UTF-8." if json_body else "it is not a well-formed form."),
                code="invalid_json" if json_body else "invalid_body",
            )
        messages = {404: "Not found.", 405: "Method not allowed."}
        return envelope(
            exc.status_code,
            str(exc.detail)
            if exc.detail and exc.status_code not in messages
            else messages.get(exc.status_code, "Error."),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return envelope(500, "The server had an error while processing your request.", "server_error")
