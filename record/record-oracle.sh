#!/usr/bin/env bash
# Record ../shared/oracle's machines (a real Linux 7.2 kernel in QEMU) as vfiosim hosts:
#   record/record-oracle.sh [TOPOLOGY...]      (default: default devset devset-igb group)
# writes hosts/oracle-<topology>.yaml. Each run boots the oracle (~5 s under TCG), binds the
# topology's devices to vfio-pci, and runs the statically linked recorder with the probe file;
# the oracle's device names (devices.tsv) become the functions' names.
# ORACLE_QEMU=BIN picks the QEMU (devset-igb needs QEMU >= 8.0 for igb); its version goes into the
# description, since the emulated hardware (e.g. the VT-d capability register) differs by version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
oracle=${ORACLE_DIR:-$root/../shared/oracle}
topologies=("$@")
[ ${#topologies[@]} -gt 0 ] || topologies=(default devset devset-igb group)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$oracle/oracle-cc" -o "$tmp/vfiosim-record" "$here/vfiosim-record.c"
cp "$here/probes.txt" "$tmp/probes.txt"
for t in "${topologies[@]}"; do
  desc=$("$oracle/oracle-run" --list | awk -v t="$t" '$1 == t { $1 = ""; sub(/^ +/, ""); print }')
  qemu=$("${ORACLE_QEMU:-qemu-system-x86_64}" --version | sed -n 's/^QEMU emulator version \([0-9.]*\).*/\1/p')
  # shellcheck disable=SC2016 # expanded in the guest
  "$oracle/oracle-run" -t "$t" --raw -p "$tmp/vfiosim-record" -p "$tmp/probes.txt" -- sh -c '
    set -- -P /oracle/probes.txt -N "$0" -D "$1"
    while read -r name bdf rest; do set -- "$@" -n "$bdf=$name"; done < /oracle/devices.tsv
    exec vfiosim-record "$@"' "oracle-$t" "the real-kernel oracle's \"$t\" machine (Linux 7.2, QEMU $qemu q35, emulated VT-d): $desc" \
    >"$tmp/oracle-$t.yaml"
  mv "$tmp/oracle-$t.yaml" "$root/hosts/oracle-$t.yaml"
  echo "hosts/oracle-$t.yaml: $(wc -l <"$root/hosts/oracle-$t.yaml") lines"
done
