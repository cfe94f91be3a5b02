#!/usr/bin/env bash
# hack/demote-ticks.sh [SUITE]: when do twenty `rbd mirror image demote` calls
# started at once end? On a lab of its own (Ceph of Debian SUITE, default sid),
# it relocates twenty images there and back twice with the monitors' default
# paxos_propose_interval, then twice with 0.2 s, and prints each relocation's
# demote ends in seconds after their start, sorted (docs/development.md: the
# demote step's one-second groups). Run as root, with no other lab on
# 127.0.0.5-6; it takes about five minutes and removes its lab at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${1:-sid}
export CEPH_LAB_DIR=/tmp/rbd-dr-demote-ticks CEPH_LAB_IP_A=127.0.0.5 CEPH_LAB_IP_B=127.0.0.6
if [ "$suite" != bookworm ]; then
	CEPH_LAB_ROOT=$(hack/ceph-root path "$suite")
	export CEPH_LAB_ROOT
fi
lab=hack/ceph-lab
trap '$lab down >/dev/null 2>&1 || true' EXIT
$lab up >/dev/null
images=()
for i in $(seq -w 1 20); do images+=("replicapool/ticks-$i"); done
for img in "${images[@]}"; do
	{ $lab rbd site-a create "$img" --size 32M && $lab rbd site-a mirror image enable "$img" snapshot >/dev/null; } &
done
wait
sleep 20 # the peer's first copies

# relocate FROM TO: demote every image on FROM at once and print when each
# call ended; then promote each on TO once its demotion has replayed there.
relocate() {
	local from=$1 to=$2 t0 ends
	ends=$(mktemp)
	t0=$(date +%s.%N)
	for img in "${images[@]}"; do
		{ $lab rbd "$from" mirror image demote "$img" >/dev/null && date +%s.%N >>"$ends"; } &
	done
	wait
	echo "$from -> $to: $(sort -n "$ends" | awk -v t0="$t0" '{printf "%.2f ", $1 - t0}')"
	if [ "$(wc -l <"$ends")" != "${#images[@]}" ]; then
		echo "demote-ticks: not every demote on $from succeeded" >&2
		exit 1
	fi
	rm -f "$ends"
	local pids=() pid
	for img in "${images[@]}"; do
		{
			for _ in $(seq 1 100); do
				$lab rbd "$to" mirror image promote "$img" >/dev/null 2>&1 && exit 0
				sleep 0.3
			done
			echo "demote-ticks: $img not promoted on $to in 30 s" >&2
			exit 1
		} &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do wait "$pid"; done
	sleep 3
}
for interval in default 0.2; do
	if [ "$interval" != default ]; then
		for site in site-a site-b; do $lab ceph "$site" config set mon paxos_propose_interval "$interval"; done
	fi
	echo "paxos_propose_interval $interval"
	for _ in 1 2; do relocate site-a site-b; relocate site-b site-a; done
done
