# One image for every process of a site: web, worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APPLIANCE_DATA_DIR=/var/lib/appliance

RUN apt-get update \
    && apt-get install -y --no-install-recommends iputils-arping iproute2 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY appliance appliance
COPY security security
COPY failover failover
RUN pip install --no-cache-dir .
COPY manage.py ./
COPY templates templates
COPY static static
RUN useradd --system --home /var/lib/appliance appliance \
    && mkdir -p /var/lib/appliance \
    && chown appliance /var/lib/appliance

USER appliance
EXPOSE 8000
CMD ["gunicorn", "appliance.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
