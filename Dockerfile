# syntax=docker/dockerfile:1
# One image for every lstmq process: migrate, workers, scheduler, the API and the producer CLI.
#
#   CPU (default):  docker build -t lstmq:cpu .
#   GPU (CUDA):     docker build -t lstmq:gpu --build-arg TORCH_INDEX_URL=https://pypi.org/simple .
#
# torch is installed first and pinned, from TORCH_INDEX_URL: the CPU index wheel is a few
# hundred MB, while the default PyPI wheel bundles CUDA (several GB) and is what GPU hosts
# want; the NVIDIA Container Toolkit supplies the driver at run time. `pip install .[worker]`
# then finds torch already satisfied and never swaps it for another build.
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The slowest layer, cached across source edits.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

# Install from a bind mount so the image holds the installed package, not a second copy of
# the sources (and never the build context's .venv: see .dockerignore).
RUN --mount=type=bind,source=.,target=/src,rw \
    pip install "/src[worker]" && python -c "import lstmq.cli, lstmq.worker, lstmq.producer, lstmq.api.app"

# Non-root; data folders exist and belong to the user so named volumes mounted there
# start out writable by it (Docker copies the folder's ownership into an empty volume).
RUN useradd --create-home --uid 10001 --user-group lstmq \
    && mkdir -p /data/images /data/models \
    && chown -R lstmq:lstmq /data
ENV LSTMQ_HOME=/data \
    LSTMQ_IMAGE_DIR=/data/images \
    LSTMQ_MODEL_DIR=/data/models
USER lstmq
WORKDIR /home/lstmq

CMD ["lstmq", "--help"]
