#!/usr/bin/env bash
# Runs the C export of each variant's counterexample (vfiosim explore SCENARIO --variant V
# --export-c) on the real Linux 7.2 kernel (the oracle's default machine) and writes what they
# print to test/fixtures/oracle-explore-counterexamples.out, one "== VARIANT SCHEDULE" block per
# program. test/explore.test.ts checks that each block is one of the outcomes the explorer predicts
# for Linux 7.2's design (the header of each C program lists them) and that the schedules are
# still the counterexamples the explorer finds (rerun this script when they change).
#   npx tsc -p tsconfig.json && bash tools/oracle/explore-counterexamples.sh    (~10 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
oracle=${ORACLE_DIR:-$(cd .. && pwd)/shared/oracle}
out=${1:-test/fixtures/oracle-explore-counterexamples.out}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pairs="per-file-open:two-device-files group-fd-unpinned:group-close-vs-device atomic-opened:bind-vs-ioctl bound-unbound:unbind-vs-ioctl"
names=()
for p in $pairs; do
  v=${p%%:*} f=examples/explore/${p#*:}.yaml
  # exit status 1: a violation (the counterexample) was found
  node dist/src/cli/main.js explore "$f" --variant "$v" --quiet --export-c "$tmp/$v.c" >/dev/null || [ $? -eq 1 ]
  "$oracle/oracle-cc" -pthread -o "$tmp/$v" "$tmp/$v.c"
  sed -n 's/^ \* Schedule: \(.*\)$/\1/p' "$tmp/$v.c" >"$tmp/$v.schedule"
  names+=("$v")
done
script='for v in '"${names[*]}"'; do echo "== $v $(cat $v.schedule)"; ./$v; done'
puts=()
for v in "${names[@]}"; do puts+=(-p "$tmp/$v" -p "$tmp/$v.schedule"); done
"$oracle/oracle-run" --raw "${puts[@]}" -- sh -c "$script" >"$out"
cat "$out"
