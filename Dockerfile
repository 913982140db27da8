# wa-bridge receiver (and every other wa-bridge command) on a pinned python slim image.
# Build: docker build -t wa-bridge:0.1.0 .
# Run:   docker run -p 8080:8080 -e WA_BRIDGE_APP_SECRETS_FILE=/run/secrets/app_secret ... \
#          -e WA_BRIDGE_KAFKA_BOOTSTRAP=kafka:9092 wa-bridge:0.1.0
# Worker: docker run ... wa-bridge:0.1.0 wa-bridge worker --metrics-port 9100
# Migrations never run at start-up; they are their own command, run once per release:
#        docker run ... wa-bridge:0.1.0 wa-bridge db upgrade
# deploy/compose.yaml and deploy/k8s/ show all of it wired together.

FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# the wheel carries these too (force-include in pyproject.toml): the build needs them
COPY schemas ./schemas
COPY mappings ./mappings
COPY migrations ./migrations
RUN python -m venv /opt/wa-bridge \
 && /opt/wa-bridge/bin/pip install .

FROM python:3.11.13-slim-bookworm
ENV PATH="/opt/wa-bridge/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WA_BRIDGE_MAPPINGS_PATH=/app/mappings/sql.yaml
RUN groupadd --system --gid 10001 wabridge \
 && useradd --system --uid 10001 --gid wabridge --home-dir /app --shell /usr/sbin/nologin wabridge
COPY --from=build /opt/wa-bridge /opt/wa-bridge
WORKDIR /app
COPY --chown=wabridge:wabridge mappings ./mappings
COPY --chown=wabridge:wabridge schemas ./schemas
COPY --chown=wabridge:wabridge migrations ./migrations
USER wabridge
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
CMD ["wa-bridge", "receiver", "--host", "0.0.0.0", "--port", "8080"]
