# One image for every process of a site: web, worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APPLIANCE_DATA_DIR=/var/lib/appliance

RUN apt-get update \
    && apt-get install -y --no-install-recommends iputils-arping iproute2 \
    && rm -rf /var/lib/apt/lists/*

# The version: the build context holds no .git (.dockerignore), so setuptools-scm is told
# it: `--build-arg APPLIANCE_VERSION=$(.venv/bin/python -m setuptools_scm)` in the checkout
# (README, "Versions"; docker-compose.yml passes the variable on).
ARG APPLIANCE_VERSION
RUN test -n "$APPLIANCE_VERSION" || { echo 'Build with --build-arg APPLIANCE_VERSION=<version>,' \
    'e.g. $(.venv/bin/python -m setuptools_scm) in the checkout (README, Versions).' >&2; exit 1; }

# The wheel carries the pages and static files (setup.py); it installs the `appliance`
# command.
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY appliance appliance
COPY security security
COPY failover failover
COPY templates templates
COPY static static
RUN SETUPTOOLS_SCM_PRETEND_VERSION="$APPLIANCE_VERSION" pip install --no-cache-dir . \
    && rm -rf /app
WORKDIR /var/lib/appliance
RUN useradd --system --home /var/lib/appliance appliance \
    && mkdir -p /var/lib/appliance \
    && chown appliance /var/lib/appliance

USER appliance
EXPOSE 8000
CMD ["gunicorn", "appliance.wsgi", "--config", "python:appliance.gunicorn_config", "--bind", "0.0.0.0:8000", "--workers", "2"]
