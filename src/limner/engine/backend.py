"""What a backend is: the ``Backend`` protocol every model implementation meets (mypy checks the
built-in ones against it), and ``Batch``, the plumbing their ``generate`` shares — cancellation,
progress to each request, results gathered per request.

A backend is made by a factory ``(name, path, *, defaults, **options) -> Backend`` (usually the
class itself), registered under a name (``registry.register_backend``), by a
``limner.backends`` entry point, or named in ``models.toml`` as ``backend = "pkg.mod:Class"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from PIL import Image

from limner.engine import compute
from limner.engine.request import GeneratedImage, GenerationRequest, ModelInfo, Progress
from limner.errors import Cancelled


@runtime_checkable
class Backend(Protocol):
    name: str
    kind: str  # "limner", "diffusers", … (recorded in each image's parameters)

    def info(self) -> ModelInfo:
        """Sizes, modes, defaults and parameter count, for /v1/models and `limner models`."""
        ...

    def resolve(self, req: GenerationRequest) -> dict:
        """The request's effective settings; raises InvalidRequest for what the model cannot do."""
        ...

    def batch_key(self, req: GenerationRequest) -> tuple:
        """Requests with equal keys may share one ``generate`` call."""
        ...

    def generate(self, requests: list[GenerationRequest]) -> list[list[GeneratedImage] | BaseException]:
        """One result per request, in order: its images, or the exception that ended it
        (``Cancelled`` for a cancelled one); the others of the batch are unaffected."""
        ...


BackendFactory = Callable[..., Backend]


class Batch:
    """One ``generate`` call's requests: which were cancelled, progress to the rest, and their
    results. ``step`` runs between sampling steps; when every request is cancelled it says so
    (the backend then stops sampling)."""

    def __init__(self, requests: list[GenerationRequest]):
        self.requests = requests
        self.cancelled: set[int] = set()
        self._images: list[list[GeneratedImage]] = [[] for _ in requests]

    @property
    def all_cancelled(self) -> bool:
        return len(self.cancelled) == len(self.requests)

    def step(self, done: int, total: int, previews: Callable[[int], list[Image.Image] | None] | None = None) -> bool:
        """After sampling step ``done`` of ``total``: urgent short work runs (moderation waits a
        step, not the batch), cancellations are noted, each live request hears its progress
        (with ``previews(j)`` of its images if it asked for them). True when all are cancelled."""
        compute.between_steps()
        for j, req in enumerate(self.requests):
            if req.cancel.is_set():
                self.cancelled.add(j)
        if self.all_cancelled:
            return True
        for j, req in enumerate(self.requests):
            if req.on_progress and j not in self.cancelled:
                shown = previews(j) if previews is not None and req.previews else None
                req.on_progress(Progress(done, total, shown))
        return False

    def add(self, owner: int, image: GeneratedImage) -> None:
        self._images[owner].append(image)

    def results(self) -> list[list[GeneratedImage] | BaseException]:
        return [
            Cancelled("cancelled by the caller") if j in self.cancelled else images
            for j, images in enumerate(self._images)
        ]
