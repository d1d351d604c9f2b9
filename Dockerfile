# One image for every Python service; compose picks the command per service.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 --user-group app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY ingestor ingestor
COPY consumers consumers
RUN pip install . && mkdir /data && chown app:app /data

USER app
EXPOSE 8000
CMD ["ingestor", "serve", "--port", "8000"]
