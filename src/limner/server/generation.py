"""The one server-side path from a request to stored, accounted images, shared by the Images API,
the Image Creator and the arena: moderate → reserve quota → validate → generate → check output →
record usage (and give the reservation back if anything failed).

Admission (moderation and the quota reservation) comes first and on its own, so that a request
with uploads is admitted before its images are decoded: a key with no quota left, or a prompt
that is refused, costs the server no decoding."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from limner.engine import Engine, GeneratedImage, GenerationRequest
from limner.engine.engine import check_request
from limner.moderation import Policy
from limner.provenance import Provenance
from limner.store.db import ApiKey, Database, Usage
from limner.store.quota import refund, reserve


@dataclass
class Result:
    images: list[GeneratedImage]
    seconds: float
    model: str
    resized_from: str | None = None  # the model's size, when the API's size policy resized the images


@dataclass
class Ticket:
    """A request that passed moderation, with ``n`` images reserved on ``key``'s quota."""

    key: ApiKey | None
    n: int
    texts: tuple[str, ...]  # what moderation passed
    settled: bool = False  # True once images were delivered against the reservation


@contextmanager
def admission(
    db: Database,
    policy: Policy,
    *,
    key: ApiKey | None,
    texts: tuple[str, ...],
    n: int,
    moderation: str = "auto",
    validate: Callable[[], None] | None = None,
) -> Iterator[Ticket]:
    """Moderate ``texts`` (prompts; a negative prompt lists what must *not* be drawn — "nsfw, nude"
    is the usual one — and is not refused), ``validate`` (when the request can be checked already), and reserve
    ``n`` images; the reservation is given back unless the block settles the ticket (``run``
    does, when it delivers)."""
    policy.check_input(*texts, level=moderation)
    if validate is not None:
        validate()
    if key is not None:
        with db.session() as s:
            reserve(s, key, n)
    ticket = Ticket(key, n, texts)
    try:
        yield ticket
    finally:
        if not ticket.settled and key is not None:
            with db.session() as s:
                refund(s, key, n)


def run(
    db: Database,
    engine: Engine,
    policy: Policy,
    req: GenerationRequest,
    *,
    endpoint: str,
    request_id: str,
    key: ApiKey | None = None,
    user_id: int | None = None,
    moderation: str = "auto",
    timeout: float | None = None,
    ticket: Ticket | None = None,
    provenance: Provenance | None = None,
) -> Result:
    """Generate for ``req``; raises LimnerError subclasses (each with its HTTP status). Without a
    ``ticket`` the request is admitted here. With ``provenance``, each image is watermarked and
    stamped (its encodings carry a signed manifest)."""
    if ticket is None:
        with admission(
            db, policy, key=key, texts=(req.prompt,), n=req.n, moderation=moderation,
            validate=lambda: check_request(engine, req),
        ) as ticket:  # fmt: skip
            return run(
                db, engine, policy, req, endpoint=endpoint, request_id=request_id, key=key, user_id=user_id,
                timeout=timeout, ticket=ticket, provenance=provenance,
            )  # fmt: skip
    if (req.prompt,) != ticket.texts:
        policy.check_input(req.prompt, level=moderation)  # a prompt found in an upload
    check_request(engine, req)  # (again, cheap) for a request admitted before its images were decoded
    started = time.perf_counter()
    try:
        images = engine.generate(req, timeout=timeout)
        for im in images:
            policy.check_output(im.image)
        if provenance is not None:  # the watermark and the manifest's signer, for every door
            with db.session() as s:
                provenance.stamp(s, images, request_id=request_id, key=key, user_id=user_id, source=req.image)
    except BaseException as e:
        _record(
            db,
            key,
            user_id,
            request_id,
            endpoint,
            req.model or "",
            0,
            0,
            time.perf_counter() - started,
            type(e).__name__,
        )
        raise
    ticket.settled = True
    seconds = time.perf_counter() - started
    pixels = sum(im.image.width * im.image.height for im in images)
    _record(db, key, user_id, request_id, endpoint, req.model or "", len(images), pixels, seconds, "ok")
    return Result(images, seconds, req.model or "")


def _record(
    db: Database,
    key: ApiKey | None,
    user_id: int | None,
    request_id: str,
    endpoint: str,
    model: str,
    images: int,
    pixels: int,
    seconds: float,
    status: str,
) -> None:
    with db.session() as s:
        s.add(
            Usage(
                key_id=key.id if key else None,
                user_id=user_id,
                request_id=request_id,
                endpoint=endpoint,
                model=model,
                images=images,
                pixels=pixels,
                seconds=round(seconds, 3),
                status=status,
            )
        )


def encode(image: GeneratedImage, fmt: str = "png", compression: int | None = None) -> bytes:
    """``image`` in ``fmt``, with its parameters and (when stamped) its signed manifest:
    ``GeneratedImage.encode``, with the API's ``output_compression`` as JPEG/WebP quality."""
    quality = 90 if compression is None else max(1, min(100, 100 - compression))
    return image.encode(fmt, quality)
