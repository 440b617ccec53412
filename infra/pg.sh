#!/usr/bin/env bash
# The tests' PostgreSQL server, one per clone on a free port: infra/pg.py does the work (read it).
#
#   infra/pg.sh          start (or reuse) the server; print its SQLAlchemy URL on stdout
#   infra/pg.sh stop     stop it
#   infra/pg.sh clean    stop it and delete its cluster (make clean)
#   export GOVLAKE_TEST_PG_URL="$(infra/pg.sh)"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="$here/../.venv/bin/python"   # with psycopg, to check a given GOVLAKE_TEST_PG_URL
[[ -x "$python" ]] || python=python3
exec "$python" "$here/pg.py" "$@"
