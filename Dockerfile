# One image for the web app and the RQ worker (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 WIREWAN_INSTANCE=/data
WORKDIR /srv/wirewan

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY app ./app
COPY jobs ./jobs
COPY migrations ./migrations
COPY wsgi.py ./

RUN useradd --system --home /srv/wirewan wirewan && mkdir -p /data && chown wirewan /data
USER wirewan
VOLUME ["/data"]
EXPOSE 8000

# Migrations run at start so a new image upgrades the schema before serving.
CMD ["sh", "-c", "flask --app wsgi db upgrade && exec gunicorn --bind 0.0.0.0:8000 --workers 3 --threads 4 --no-control-socket --access-logfile - wsgi:app"]
