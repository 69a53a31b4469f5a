# Limner on a CPU: the service with the shipped weights baked in (or mounted at /app/weights).
#   docker build -t limner .
#   docker run -p 8000:8000 -v limner-data:/data limner
# PostgreSQL and several workers: compose.yaml. GPUs: build FROM a CUDA base and name
# device = "cuda" in a models.toml (docs/deployment.md).
FROM python:3.11-slim-bookworm

# OCR is for `limner eval`; the fonts set exact text in images (typography layouts)
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-open-sans fonts-roboto-unhinted \
      fonts-inter fonts-comic-neue fonts-lobster fonts-ebgaramond fonts-bebas-neue fonts-dancingscript \
      fonts-jetbrains-mono \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 limner
WORKDIR /app

# torch first and pinned. The package index's default build of torch carries CUDA (several GB);
# for a CPU image pass the address of PyTorch's CPU wheel index: --build-arg TORCH_INDEX=...
ARG TORCH_INDEX=""
RUN pip install --no-cache-dir ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir ".[ray]"
COPY weights ./weights

ENV LIMNER_DATA_DIR=/data \
    LIMNER_WEIGHTS=/app/weights \
    PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown limner:limner /data
VOLUME ["/data"]
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["limner", "serve", "--host", "0.0.0.0", "--port", "8000"]
