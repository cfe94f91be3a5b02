// Package fullloop runs the whole loop for real: a git commit, Argo CD's
// application controller and repo-server with the plugin in Argo CD's own
// cmp-server, three real Kubernetes control planes (a hub that runs Argo CD,
// and two sites), the hook Jobs, and the two-site Ceph lab.
//
// It needs root, Debian's etcd, redis and Ceph packages, and the control plane
// and Argo CD binaries that hack/fullloop-build.sh builds once into a cache, so
// it runs only when RBD_DR_E2E_FULLLOOP=1 (make e2e-fullloop sets it). Under
// CI=true a missing prerequisite fails the suite instead of skipping it.
//
// RBD_DR_FULLLOOP_APP names the app folders to put through the loop, one
// after the other on the same sites and lab, separated by ":" (default
// examples/wordpress and examples/inventory); RBD_DR_FULLLOOP_SETTINGS the
// platform's settings that know their namespaces (default the examples').
// RBD_DR_FULLLOOP_KEEP=1 keeps the run folder (logs).
package fullloop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
)

// timing is one scenario's wall time, for the table at the end.
type timing struct {
	name string
	took time.Duration
	ok   bool
}

var (
	timingsMu sync.Mutex
	timings   []timing
)

// scenario runs one step of the loop as a subtest, prints its time and
// records it; a failed step stops the ones after it (they build on it).
func scenario(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	if t.Failed() {
		t.Logf("skipping %q: an earlier scenario failed", name)
		return
	}
	begin := time.Now()
	ok := t.Run(name, func(t *testing.T) {
		// A panic would end the test binary before the daemons and the
		// Ceph lab are stopped: make it a failure instead.
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		fn(t)
	})
	took := time.Since(begin)
	fmt.Printf("fullloop: %-62s %8.1fs %s\n", name, took.Seconds(), map[bool]string{true: "ok", false: "FAILED"}[ok])
	timingsMu.Lock()
	timings = append(timings, timing{name, took, ok})
	timingsMu.Unlock()
	if !ok {
		t.Fail()
	}
}

func printTimings() {
	timingsMu.Lock()
	defer timingsMu.Unlock()
	if len(timings) == 0 {
		return
	}
	fmt.Println("fullloop timings:")
	fmt.Printf("  %-62s %9s  %s\n", "scenario", "seconds", "result")
	for _, x := range timings {
		fmt.Printf("  %-62s %9.1f  %s\n", x.name, x.took.Seconds(), map[bool]string{true: "ok", false: "FAILED"}[x.ok])
	}
}

// prerequisites says what is missing to run the suite here.
func prerequisites() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the node agent mounts volumes and the Ceph lab runs daemons)")
	}
	for _, bin := range []string{"git", "etcd", "redis-server", "rbd", "ceph", "flock"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin+" on PATH (apt-get install etcd-server redis-server ceph-common, or hack/ceph-lab up)")
		}
	}
	return missing
}

func TestFullLoop(t *testing.T) {
	if os.Getenv("RBD_DR_E2E_FULLLOOP") != "1" {
		t.Skip("set RBD_DR_E2E_FULLLOOP=1 (or run make e2e-fullloop) to run the whole loop")
	}
	if missing := prerequisites(); len(missing) > 0 {
		msg := "the full loop needs: " + strings.Join(missing, "; ")
		if testutil.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer printTimings()
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Minute)
	defer cancel()

	l := newLoop(t)
	defer l.close(t)
	scenario(t, "build and start (3 control planes)", func(t *testing.T) { l.up(ctx, t) })
	scenario(t, "install Argo CD and manifests/ (hub)", func(t *testing.T) { l.install(ctx, t) })
	scenario(t, "server-side validation (dry-run, strict)", func(t *testing.T) { l.validate(ctx, t) })
	scenario(t, "Ceph lab, images and nodes", func(t *testing.T) { l.startCeph(ctx, t); l.startNodes(ctx, t) })
	if t.Failed() {
		return // the scenarios below build on those above
	}
	for i, a := range l.apps {
		l.app = a
		fmt.Printf("fullloop app %s\n", relTo(l.root, a.source))
		depth := someScenarios
		switch {
		case shortRun():
			depth = oneRelocation
		case i == 0:
			depth = everyScenario
		case a.oneMove:
			depth = oneRelocation
		}
		l.appScenarios(ctx, t, depth)
		if t.Failed() {
			return
		}
	}
	if l.adoptee != nil && !shortRun() {
		fmt.Printf("fullloop app %s (adopted as %s)\n", relTo(l.root, l.adoptee.source), adoptName)
		scenario(t, "adopt "+adoptName+": running app, dynamic claims (Delete), taken over, relocated", func(t *testing.T) { l.adopt(ctx, t) })
	}
	if len(l.fleet) > 0 {
		sites := l.app.sites()
		first, second := l.fleet[0].policy.ActiveSite, sites[0]
		if second == first {
			second = sites[1]
		}
		fmt.Printf("fullloop app fleet (%d generated apps, one ApplicationSet)\n", len(l.fleet))
		scenario(t, "fleet: bootstrap (ApplicationSet, RollingSync)", func(t *testing.T) { l.fleetBootstrap(ctx, t) })
		scenario(t, "fleet: one commit, "+first+" -> "+second+" (RollingSync)", func(t *testing.T) { l.fleetRelocate(ctx, t, second, true) })
		if os.Getenv("RBD_DR_FULLLOOP_FLEET_COMPARE") == "1" {
			// The same move without progressive syncs, to compare (docs/operations.md).
			scenario(t, "fleet: one commit, "+second+" -> "+first+" (all at once)", func(t *testing.T) { l.fleetRelocate(ctx, t, first, false) })
		}
		scenario(t, "fleet: steady state (sync, nothing changed)", func(t *testing.T) { l.fleetSteady(ctx, t) })
	}
}

// shortRun: RBD_DR_FULLLOOP_SHORT=1 gives every app its bootstrap and one
// relocation and skips the adoption, for a quicker look at the moves' times
// while working on them.
func shortRun() bool { return os.Getenv("RBD_DR_FULLLOOP_SHORT") == "1" }

// depth is how many of the scenarios an app runs.
type depth int

const (
	// oneRelocation: the bootstrap and one relocation (the app of many
	// volumes, whose every move is long on two cores).
	oneRelocation depth = iota
	// someScenarios: the bootstrap, both relocations, the RBAC check and
	// the steady state (the apps after the first, which share its sites).
	someScenarios
	// everyScenario: the first app.
	everyScenario
)

// appScenarios runs the scenarios of the app under test (l.app), each named
// after it, as deep as d says.
func (l *loop) appScenarios(ctx context.Context, t *testing.T, d depth) {
	all := d == everyScenario
	name := func(s string) string { return l.app.name() + ": " + s }
	scenario(t, name("bootstrap (app-of-apps)"), func(t *testing.T) { l.bootstrap(ctx, t, nil) })
	if t.Failed() {
		return // the scenarios below build on those above
	}
	// The failover scenarios need the two sites of a failover; an app with
	// other sites must fail here, not pass having moved nothing.
	sites := l.app.sites()
	if len(sites) != 2 {
		t.Fatalf("the app %s has %d sites (%s): the failover scenarios need exactly two", l.app.dir(), len(sites), strings.Join(sites, ", "))
	}
	first, second := sites[0], sites[1]
	if l.app.policy.ActiveSite == second {
		first, second = second, first
	}
	scenario(t, name("planned relocation "+first+" -> "+second), func(t *testing.T) { l.relocate(ctx, t, second) })
	if d == oneRelocation {
		return
	}
	scenario(t, name("planned relocation "+second+" -> "+first), func(t *testing.T) { l.relocate(ctx, t, first) })
	if !all {
		// Right after a relocation, as for the first app (after its
		// disaster's failback): see the note in scenario_rbac_test.go.
		scenario(t, name("RBAC: no cluster-admin for anything rendered"), func(t *testing.T) { l.rbac(ctx, t) })
	}
	scenario(t, name("steady state (sync, nothing changed)"), func(t *testing.T) { l.steady(ctx, t) })
	if all {
		scenario(t, name("quiesce refuses (a foreign pod holds a PVC)"), func(t *testing.T) { l.quiesceRefuses(ctx, t) })
		scenario(t, name("disaster (SIGKILL) and return"), func(t *testing.T) { l.disaster(ctx, t) })
		scenario(t, name("RBAC: no cluster-admin for anything rendered"), func(t *testing.T) { l.rbac(ctx, t) })
	}
	if all {
		scenario(t, name("recovery point: rbd-mirror stopped, Degraded, Healthy"), func(t *testing.T) { l.rpoAlert(ctx, t) })
	}
}

// relTo is path relative to root when it lies inside it, else path.
func relTo(root, path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		if rel, err := filepath.Rel(root, abs); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return path
}

// repoRoot is the project's checkout: the folder above test/fullloop.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}
