# syntax=docker/dockerfile:1
# photo-bridge: `docker run -v ./config.yaml:/etc/photo-bridge/config.yaml:ro -p 8080:8080 IMAGE`.
# The config must set `server.host: 0.0.0.0` (and `server.port: 8080`) to be reachable from outside.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# pyproject.toml ships the top-level templates/ inside the package as bridge.templates.
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY templates ./templates
RUN pip install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    BRIDGE_CONFIG=/etc/photo-bridge/config.yaml
RUN groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid bridge --home-dir /var/lib/photo-bridge \
        --create-home --shell /usr/sbin/nologin bridge \
    && mkdir -p /etc/photo-bridge
COPY --from=build /opt/venv /opt/venv
# The working directory is writable by the bridge user, so `sqlite:///bridge.db` lands here.
WORKDIR /var/lib/photo-bridge
USER 10001:10001
EXPOSE 8080
# slim has no curl: probe /healthz with the standard library; an HTTP error or no answer exits 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
ENTRYPOINT ["photo-bridge"]
CMD ["serve"]
