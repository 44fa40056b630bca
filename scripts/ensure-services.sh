#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on loopback; start whichever is down (../shared/SERVICES.md).
set -euo pipefail

need() { command -v "$1" >/dev/null 2>&1; }

if ! need pg_isready || ! need redis-cli; then
  echo "PostgreSQL and Redis client tools are missing." >&2
  echo "Install them (Debian: apt-get install -y postgresql redis-server) or point" >&2
  echo "DATABASE_URL and REDIS_URL at running servers." >&2
  exit 2
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "PostgreSQL is down; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "Redis is down; starting it"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
fi
echo "redis: $(redis-cli -h 127.0.0.1 ping)"

# The suite's database name comes from DATABASE_URL (default crowdlabel); pytest creates test_<name>
# itself, but management commands run by `make test` (the migrations check) connect to <name>.
db="${DATABASE_URL:-postgres://root@127.0.0.1:5432/crowdlabel}"
name="${db##*/}"
if ! psql "${db%/*}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='${name}'" | grep -q 1; then
  psql "${db%/*}/postgres" -qc "CREATE DATABASE \"${name}\"" || true
fi
