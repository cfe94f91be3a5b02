#!/usr/bin/env bash
# bench-ratio.sh: the start-up budget of docs/architecture.md, measured. Times, whole
# process and interleaved, `argocd-rbd-dr generate` on examples/wordpress for
# site-b (as the cmp-server runs it) against `kustomize build` of the same
# overlay, and prints the medians and their ratio. It only prints: no timing
# is asserted.
#
#   bash hack/bench-ratio.sh           # RUNS=30 interleaved runs of each
#   RUNS=100 bash hack/bench-ratio.sh
#   RSS_RUNS=0 bash hack/bench-ratio.sh   # peak memory: RSS_RUNS separate runs (default min(RUNS, 10))
#   CPU_RUNS=0 bash hack/bench-ratio.sh   # CPU time: CPU_RUNS runs each under perf stat (default min(RUNS, 20))
#
# Needs go and kustomize on PATH (make bench puts bin/tools first). Peak
# memory is measured too when GNU time (/usr/bin/time, Debian package `time`)
# is installed, and CPU time when perf (Debian package linux-perf) may count:
# on a shared machine CPU time moves less with the neighbours than wall time.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
app="$root/examples/wordpress"
overlay="$app/overlays/site-b"

runs=${RUNS:-30}
if ! [[ $runs =~ ^[1-9][0-9]{0,5}$ ]]; then
	echo "bench-ratio: RUNS must be a positive whole number (got RUNS=$runs)" >&2
	exit 2
fi
rss_runs=${RSS_RUNS:-$((runs < 10 ? runs : 10))}
if ! [[ $rss_runs =~ ^[0-9]{1,6}$ ]]; then
	echo "bench-ratio: RSS_RUNS must be a whole number, 0 to skip peak memory (got RSS_RUNS=$rss_runs)" >&2
	exit 2
fi
cpu_runs=${CPU_RUNS:-$((runs < 20 ? runs : 20))}
if ! [[ $cpu_runs =~ ^[0-9]{1,6}$ ]]; then
	echo "bench-ratio: CPU_RUNS must be a whole number, 0 to skip CPU time (got CPU_RUNS=$cpu_runs)" >&2
	exit 2
fi
if ! kustomize=$(command -v kustomize); then
	echo "bench-ratio: kustomize is not on PATH; install the CLI the tests compare against:" >&2
	echo "  go install sigs.k8s.io/kustomize/kustomize/v5@v5.4.2   (or: make tools, which puts it in bin/tools)" >&2
	exit 1
fi
command -v go >/dev/null || { echo "bench-ratio: go is not on PATH" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin="$tmp/argocd-rbd-dr"

echo "== building ./cmd/cmp as make build does (CGO_ENABLED=0, -trimpath, -s -w)"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin" ./cmd/cmp)
kversion=$(go version -m "$kustomize" 2>/dev/null | awk '$1 == "mod" { print $3 }') || true
printf '   %-24s %s (%s KiB)\n' "argocd-rbd-dr" "$bin" "$(($(stat -c %s "$bin") / 1024))"
printf '   %-24s %s %s (%s KiB)\n' "kustomize" "$kustomize" "${kversion:-version unknown}" "$(($(stat -L -c %s "$kustomize") / 1024))"

echo "== go list -deps ./cmd/cmp (informational; docs/architecture.md keeps argo-cd and gitops-engine out)"
deps=$(cd "$root" && go list -deps ./cmd/cmp)
printf '   %s packages in all\n' "$(wc -l <<<"$deps")"
for mod in github.com/argoproj/argo-cd github.com/argoproj/gitops-engine k8s.io/client-go; do
	n=$(grep -c "^$mod\(/\|$\)" <<<"$deps" || true)
	if ((n > 0)); then
		printf '   %-36s linked (%d packages)\n' "$mod" "$n"
	else
		printf '   %-36s not linked\n' "$mod"
	fi
done

# The two commands, as functions so that timing them forks nothing extra.
# generate runs in the app folder with the environment the cmp-server gives it,
# and the platform settings the sidecar mounts.
generate() {
	ARGOCD_ENV_SITE=site-b ARGOCD_APP_NAMESPACE=wordpress ARGOCD_APP_SOURCE_PATH=examples/wordpress \
		RBD_DR_SETTINGS="$root/examples/rbd-dr-settings.yaml" "$@" "$bin" generate
}
build() {
	"$@" "$kustomize" build "$overlay"
}
cd "$app"

# Both must work before anything is timed; this also warms the page cache.
for cmd in generate build; do
	if ! "$cmd" >"$tmp/out" 2>"$tmp/err" || ! [[ -s $tmp/out ]]; then
		echo "bench-ratio: $cmd failed or printed nothing:" >&2
		cat "$tmp/err" >&2
		exit 1
	fi
done

# timed CMD sets elapsed_us to CMD's wall time. Bash 5's EPOCHREALTIME is read
# without forking; older shells fall back to date(1).
timed() {
	local t0 t1
	if [[ -n ${EPOCHREALTIME:-} ]]; then
		t0=${EPOCHREALTIME/[.,]/}
		"$1" >/dev/null
		t1=${EPOCHREALTIME/[.,]/}
	else
		t0=$(($(date +%s%N) / 1000))
		"$1" >/dev/null
		t1=$(($(date +%s%N) / 1000))
	fi
	elapsed_us=$((10#$t1 - 10#$t0))
}

# median prints the median of the numbers on stdin, then the min and the max.
median() {
	sort -n | awk '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		print m, v[1], v[NR]
	}'
}

echo "== timing $runs interleaved runs of each (order alternates)"
: >"$tmp/generate.us"
: >"$tmp/build.us"
for ((i = 0; i < runs; i++)); do
	order=(generate build)
	if ((i % 2)); then
		order=(build generate)
	fi
	for cmd in "${order[@]}"; do
		timed "$cmd"
		echo "$elapsed_us" >>"$tmp/$cmd.us"
	done
done

# Peak RSS, in separate runs: wrapping the timed runs in time(1) would add its
# own start-up to theirs.
have_rss=0
if ((rss_runs > 0)) && [[ -x /usr/bin/time ]] && /usr/bin/time -f %M -o "$tmp/probe" true 2>/dev/null; then
	have_rss=1
	: >"$tmp/generate.kib"
	: >"$tmp/build.kib"
	for ((i = 0; i < rss_runs; i++)); do
		for cmd in generate build; do
			"$cmd" /usr/bin/time -f %M -o "$tmp/rss" >/dev/null
			tail -n 1 "$tmp/rss" >>"$tmp/$cmd.kib"
		done
	done
fi

# CPU time of all the process's threads (task-clock), in separate runs under
# perf stat, interleaved as above; perf prints msec as its first CSV field.
have_cpu=0
if ((cpu_runs > 0)) && command -v perf >/dev/null && perf stat -x, -e task-clock true >/dev/null 2>&1; then
	have_cpu=1
	: >"$tmp/generate.cpums"
	: >"$tmp/build.cpums"
	for ((i = 0; i < cpu_runs; i++)); do
		for cmd in generate build; do
			"$cmd" perf stat -x, -e task-clock -o "$tmp/cpu" >/dev/null
			awk -F, '$3 == "task-clock" { print $1 }' "$tmp/cpu" >>"$tmp/$cmd.cpums"
		done
	done
fi

read -r gen_med gen_min gen_max < <(median <"$tmp/generate.us")
read -r kus_med kus_min kus_max < <(median <"$tmp/build.us")
ms() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }

echo
echo "examples/wordpress, site-b, $runs interleaved runs, stdout to /dev/null, wall time in ms"
printf '%-26s %8s %8s %8s %14s\n' "" median min max "peak RSS MiB"
for row in "argocd-rbd-dr generate:$gen_med:$gen_min:$gen_max:generate" "kustomize build:$kus_med:$kus_min:$kus_max:build"; do
	IFS=: read -r name med lo hi cmd <<<"$row"
	rss="-"
	if ((have_rss)); then
		rss=$(median <"$tmp/$cmd.kib" | awk '{ printf "%.1f", $1 / 1024 }')
	fi
	printf '%-26s %8s %8s %8s %14s\n' "$name" "$(ms "$med")" "$(ms "$lo")" "$(ms "$hi")" "$rss"
done
if ((have_rss)); then
	echo "(peak RSS: median of $rss_runs runs each under /usr/bin/time -f %M)"
elif ((rss_runs == 0)); then
	echo "(peak RSS not measured: RSS_RUNS=0)"
else
	echo "(peak RSS not measured: install GNU time, Debian package \`time\`, for /usr/bin/time)"
fi
if ((have_cpu)); then
	read -r gen_cpu _ < <(median <"$tmp/generate.cpums")
	read -r kus_cpu _ < <(median <"$tmp/build.cpums")
	awk -v g="$gen_cpu" -v k="$kus_cpu" -v n="$cpu_runs" 'BEGIN {
		printf "CPU time, all threads (perf stat task-clock, median of %d runs): generate %.1f ms, kustomize build %.1f ms, ratio %.2f\n", n, g, k, g / k
	}'
elif ((cpu_runs > 0)); then
	echo "(CPU time not measured: perf is not installed or may not count here)"
fi
awk -v g="$gen_med" -v k="$kus_med" 'BEGIN { printf "ratio generate/kustomize (median wall): %.2f\n", g / k }'
