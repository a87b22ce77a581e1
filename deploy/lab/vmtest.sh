#!/usr/bin/env bash
# make vmtest: every kernel-lab test, inside the lab's guest.
#
#   deploy/lab/vmtest.sh [testsum flags, e.g. -record .cache/test-results.jsonl]
#
# A lab test is a test named TestLab... (it calls labtest.RequireLab). This
# builds bin/seesaw-lab, prepares the lab once (Debian packages, the pinned
# kernel, the initramfs), finds the packages that have lab tests, and runs
# them with go test -exec, one guest per test binary, through
# deploy/testsum as the lab layer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CGO_ENABLED=0
GO=${GO:-go}

$GO build -o bin/seesaw-lab ./deploy/lab/cmd/seesaw-lab
# Before go test starts guests in parallel, so they find everything ready.
bin/seesaw-lab prepare >&2
# The whole-appliance tests (deploy/appliance) run the real daemons, which
# the guest cannot reasonably compile (software emulation): build them here
# and tell the tests where (the lab carries the environment into the guest).
# A directory of their own: make build's bin/ keeps its version stamp. As
# make build ships them: one multi-call binary, hard-linked as each name.
mkdir -p .cache/lab-bin
$GO build -trimpath -o .cache/lab-bin/seesaw-multicall ./deploy/cmd/seesaw-multicall
for b in seesaw_watchdog seesaw_engine seesaw_ncc seesaw_ha seesaw_healthcheck seesaw_ecu seesaw_cli; do
	ln -f .cache/lab-bin/seesaw-multicall .cache/lab-bin/$b
done
export SEESAW_BIN=$(pwd)/.cache/lab-bin

# Only packages with lab tests: the others would be built for nothing
# (the exec wrapper would not boot a guest for them either).
pkgs=()
while IFS= read -r line; do
	dir=${line%% *} pkg=${line#* }
	if grep -qsE '^func TestLab' "$dir"/*_test.go; then
		pkgs+=("$pkg")
	fi
done < <($GO list -f '{{.Dir}} {{.ImportPath}}' ./...)
if [ ${#pkgs[@]} -eq 0 ]; then
	echo "vmtest: no package has lab tests (func TestLab...)" >&2
	exit 1
fi
echo "vmtest: lab tests in ${#pkgs[@]} packages: ${pkgs[*]}" >&2

# TestLabBenchMemory, TestLabBenchFailback and TestLabBenchECU are make bench's
# (they run only with -appliance.bench);
# left to skip here, it would count as a skip, which fails CI.
# A package's lab tests run one after another in one guest: the whole-
# appliance package takes well over go test's default 10 minutes.
$GO test -json -count=1 -timeout 90m -exec "$(pwd)/bin/seesaw-lab exec" -run '^TestLab' -skip '^TestLabBench(Memory|Failback|ECU)$' "${pkgs[@]}" |
	$GO run ./deploy/testsum -layer lab "$@"
