# libertai-monitor: the service in a small image, configured by environment variables only.
#
#   docker build -t libertai-monitor .
#   docker run -e LIBERTAI_API_KEY=... -v libertai-data:/data -p 8787:8787 libertai-monitor
#
# tests/deploy/test_docker.py replays this file without a Docker engine: it runs the builder stage's
# RUN lines (paths mapped to a temporary directory) in a clean virtual environment, starts the service
# with the runtime stage's ENV, ENTRYPOINT and CMD, and runs the HEALTHCHECK command against it. Keep
# the RUN lines of the builder stage plain shell commands on the paths below so that it still can.

# -- builder: the project and its dependencies installed into a virtual environment -----------------
FROM python:3.11-slim AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv

# Only what `pip install` needs: the package metadata, the README it names, the code (the monitor and
# the failover client's package, which it ships too), the migrations.
COPY pyproject.toml README.md /src/
COPY monitor /src/monitor
COPY clients/libertai-failover/libertai_failover /src/clients/libertai-failover/libertai_failover
COPY migrations /src/migrations

# With the `postgres` extra (asyncpg): the same image runs on SQLite or, for several replicas, on
# PostgreSQL (docker-compose.yml's `ha` profile).
RUN /opt/venv/bin/pip install --no-cache-dir "/src/[postgres]"

# -- runtime: the virtual environment on a clean slim Python, as an unprivileged user ----------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="libertai-monitor" \
      org.opencontainers.image.description="Probes LibertAI's inference hosts and serves the best host per model, with Prometheus metrics." \
      org.opencontainers.image.licenses="MIT"

# The home and working directory is the data volume; nothing else in the image is written at run time.
RUN groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid monitor --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin monitor \
    && install -d -o monitor -g monitor -m 0750 /data

COPY --from=build /opt/venv /opt/venv

# Settings by environment only (see README.md, "Settings"). These two differ from the service's own
# defaults: listen on every interface of the container, keep the SQLite history on the volume.
# The key: LIBERTAI_API_KEY, or LIBERTAI_MONITOR_API_KEY_FILE naming a mounted secret.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LIBERTAI_MONITOR_LISTEN=0.0.0.0:8787 \
    LIBERTAI_MONITOR_DATABASE_URL=sqlite+aiosqlite:////data/libertai-monitor.db

USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 8787

# No curl in the slim image: the standard library asks /healthz, on the port of LIBERTAI_MONITOR_LISTEN
# (8787 unless overridden). Exits non-zero on a refused connection, a timeout or a non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('LIBERTAI_MONITOR_LISTEN', '').rpartition(':')[2] or '8787'; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=3)"]

ENTRYPOINT ["libertai-monitor"]
CMD ["run"]
