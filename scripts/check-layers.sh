#!/usr/bin/env bash
# Fails when a crate reaches a dependency its layer must not have
# (STYLE.md convention 1): the domain stays free of I/O frameworks, the
# CLI and client never see the domain, the simulators share no code with
# the platform.
set -euo pipefail
fail=0
deny() { # crate pattern why
  local deps
  deps=$(cargo tree -p "$1" -e normal --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | sort -u)
  if echo "$deps" | grep -Eqx "$2"; then
    echo "layer violation: $1 depends on $(echo "$deps" | grep -Ex "$2" | tr '\n' ' ')($3)" >&2
    fail=1
  fi
}
deny satusky-core 'axum|sqlx|kube|kube-client|tonic|hyper|reqwest' "core holds no I/O framework"
deny satusky-types 'axum|sqlx|kube|tonic|satusky-core' "types depend on serde only"
deny satusky-client 'satusky-core|axum|sqlx|kube' "the client speaks only the wire types"
deny satusky-cli 'satusky-core|satusky-store|satusky-api|sqlx|kube' "1ctl depends on the client, never on core"
deny kube-sim 'satusky-.*' "kube-sim depends on no satusky crate"
deny talos-sim 'satusky-core|satusky-types|satusky-machines|satusky-store|satusky-api' "talos-sim depends on proto only"
exit $fail
