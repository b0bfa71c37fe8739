#!/usr/bin/env bash
# Starts a NATS server on 127.0.0.1:4222 (installing the Debian package if
# missing) and prints its URL. The server runs until the calling shell exits.
set -euo pipefail
if ! command -v nats-server >/dev/null 2>&1; then
  echo "nats.sh: installing nats-server" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >&2
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  nohup nats-server -a 127.0.0.1 -p 4222 >/tmp/satusky-nats.log 2>&1 &
  for _ in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break
    sleep 0.1
  done
fi
echo "nats://127.0.0.1:4222"
