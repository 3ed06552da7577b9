# The catalog with its sample datasets, served by gunicorn on port 5000.
# docker build -t taza-catalog . && docker run -p 5000:5000 taza-catalog
# Several nodes on PostgreSQL, S3 and a job queue behind nginx: deploy/compose.yaml (the same
# image runs `taza serve` on each node and `taza worker`; docs/deployment.md).
FROM node:20-bookworm-slim AS vendor
WORKDIR /build
COPY catalog/portal/package.json catalog/portal/package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

FROM python:3.12-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TAZA_HOME=/var/lib/taza
WORKDIR /app
COPY pyproject.toml constraints.txt requirements-csw.txt README.md ./
COPY catalog catalog
COPY config config
COPY datasets datasets
COPY --from=vendor /build/node_modules catalog/portal/node_modules
# Editable, as `make install` does: config/ and datasets/ are found next to the package.
# pycsw (CSW at /csw) in a virtualenv of its own, as `make install` builds it: its pins clash
# with ours (catalog/discovery/csw.py finds it at /app/.venv-csw).
# PostgreSQL 15's client programs: `taza backup` and `taza restore` on the PostgreSQL profile
# run pg_dump, pg_restore and psql (catalog/backups), e.g. `docker compose exec node-a taza backup`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir -c constraints.txt -e . \
    && python -m venv /app/.venv-csw \
    && /app/.venv-csw/bin/pip install --no-cache-dir --no-deps -r requirements-csw.txt \
    && useradd --system --home-dir /var/lib/taza --create-home taza
USER taza
# The samples are the project's own files, derived reproducibly (datasets/derive.py), and
# docker build's seccomp profile refuses the namespaces the isolated reader needs: the build
# reads them without isolation. At run time uploads ARE isolated: run the container with a
# seccomp profile that allows unshare(CLONE_NEWUSER|CLONE_NEWNET) (docs/stewards.md,
# "Untrusted files"), or uploads answer 503 by design.
RUN TAZA_READER_ISOLATION=off taza publish --all
EXPOSE 5000
# Set TAZA_PUBLIC_URL to the address clients use when it differs from http://HOST:PORT.
CMD ["taza", "serve", "--host", "0.0.0.0", "--port", "5000"]
