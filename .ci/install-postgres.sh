#!/usr/bin/env bash
# Installs PostgreSQL 15 and builds pgvector for it. Debian bookworm has no pgvector package, so the
# extension is built from Debian trixie's source package, fetched through a private apt source list
# (from the same mirror the machine already uses) so the system's own sources stay untouched.
set -euo pipefail
PG_VERSION=15
PG_CONFIG=/usr/lib/postgresql/$PG_VERSION/bin/pg_config

if [ -x "$PG_CONFIG" ] && [ -f "$($PG_CONFIG --sharedir)/extension/vector.control" ]; then
  echo "[postgres] PostgreSQL $PG_VERSION with pgvector already installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "postgresql-$PG_VERSION" "postgresql-server-dev-$PG_VERSION" dpkg-dev make gcc >/dev/null

mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { echo "[postgres] cannot find the Debian mirror in the apt sources" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"  # apt downloads as the _apt user
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$work/lists")
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" source -qq --download-only pgvector >/dev/null && dpkg-source -x --no-check ./pgvector_*.dsc src >/dev/null)
make -s -C "$work/src" PG_CONFIG="$PG_CONFIG" with_llvm=no >/dev/null
make -s -C "$work/src" PG_CONFIG="$PG_CONFIG" with_llvm=no install >/dev/null
echo "[postgres] PostgreSQL $PG_VERSION with pgvector $(grep default_version "$($PG_CONFIG --sharedir)/extension/vector.control" | cut -d"'" -f2) installed"
