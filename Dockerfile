FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY gateway gateway
COPY ingest ingest
COPY calibration calibration
COPY api api
COPY open_export open_export
COPY firmware_tools firmware_tools
COPY migrations migrations
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/civicair civicair \
    && mkdir -p /var/lib/civicair && chown civicair /var/lib/civicair
USER civicair
EXPOSE 8000
CMD ["civicair", "up"]
