# One image for web, worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=marketplace.settings.production

RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 curl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install .
COPY . .
# The local settings generate throwaway Stripe secrets for this step; none stays in the image.
RUN SECRET_KEY=build-only-not-secret-build-only-not-secret DJANGO_SETTINGS_MODULE=marketplace.settings.local \
    STATIC_MANIFEST=true \
    LOCAL_SECRETS_FILE=/tmp/build-secrets.json python manage.py collectstatic --noinput \
 && rm -f /tmp/build-secrets.json

RUN useradd --create-home app && mkdir -p /app/var/media && chown -R app /app/var
USER app
EXPOSE 8000
CMD ["gunicorn", "marketplace.wsgi:application", "--config", "gunicorn.conf.py"]
