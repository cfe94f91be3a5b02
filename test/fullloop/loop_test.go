package fullloop

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// loop is everything one run of the suite starts.
type loop struct {
	root    string // the project checkout
	run     string // the run folder: logs, certificates, data, the git repo
	bin     string // folder of the built argocd-rbd-dr (and the node agent)
	kubeBin string // folder of kube-apiserver, -controller-manager, -scheduler
	argocd  string // Argo CD's multicall binary

	hub   *cluster
	sites map[string]*cluster
	// apps are the app folders under test, in order; app is the one the
	// scenarios run on now.
	apps []*app
	app  *app
	// adoptee is the adoption scenario's app (nil when it does not run).
	adoptee *app
	// fleet are the fleet scenario's apps, in one repository (none when it
	// does not run); fleetLast their last markers, by app.
	fleet     []*app
	fleetLast map[string]map[string]*marker
	argo      *argo
	lab       *lab
	nodes     map[string]*proc // the node agent of each site
	dead      map[string]bool  // sites the disaster took
	// lastMarkers are the markers the app wrote last, by image.
	lastMarkers map[string]*marker
	// unlock releases the heavy-job lock the suite holds while Ceph runs.
	unlock func()
	// bg is the context of the suite's own background loops; close ends it.
	bg       context.Context
	bgCancel context.CancelFunc
	// cleanup runs after every daemon stopped.
	cleanup []func()
}

func newLoop(t *testing.T) *loop {
	t.Helper()
	// Short: unix socket paths (the cmp-server's) must fit in 108 bytes.
	run, err := os.MkdirTemp("", "rbd-dr-fl")
	if err != nil {
		t.Fatal(err)
	}
	bg, cancel := context.WithCancel(context.Background())
	return &loop{bg: bg, bgCancel: cancel, root: repoRoot(t), run: run, sites: map[string]*cluster{}, nodes: map[string]*proc{}, dead: map[string]bool{}}
}

// close stops every daemon by PID and removes the run folder (kept, with
// its logs, when RBD_DR_FULLLOOP_KEEP=1).
func (l *loop) close(t *testing.T) {
	l.bgCancel()
	stopAll()
	if l.lab != nil {
		l.lab.down()
	}
	if l.unlock != nil {
		l.unlock()
	}
	for _, f := range l.cleanup {
		f()
	}
	if os.Getenv("RBD_DR_FULLLOOP_KEEP") == "1" {
		t.Logf("run folder kept: %s", l.run)
		return
	}
	if err := os.RemoveAll(l.run); err != nil {
		t.Errorf("removing %s: %v", l.run, err)
	}
}

// tool runs hack/fullloop-build.sh for one wrapper module and returns the
// cache folder with its binaries (built once, then reused).
func (l *loop) tool(t *testing.T, name string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(l.root, "hack", "fullloop-build.sh"), name)
	cmd.Dir = l.root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/fullloop-build.sh %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// goBuild builds a package of this module into l.bin.
func (l *loop) goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", filepath.Join(l.bin, out), pkg)
	cmd.Dir = l.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// up builds what is missing and starts the hub and one control plane per
// site of the app.
func (l *loop) up(ctx context.Context, t *testing.T) {
	begin := time.Now()
	l.kubeBin = l.tool(t, "kube")
	l.bin = filepath.Join(l.run, "bin")
	l.goBuild(t, "argocd-rbd-dr", "./cmd/cmp")
	t.Logf("binaries ready in %.1fs", time.Since(begin).Seconds())

	begin = time.Now()
	var err error
	if l.hub, err = startCluster(ctx, l.run, "hub", l.kubeBin); err != nil {
		t.Fatalf("hub: %v", err)
	}
	srcs := sourceApps(l.root)
	policies := make([]*config.Policy, len(srcs))
	for i, src := range srcs {
		if policies[i], err = loadPolicy(src); err != nil {
			t.Fatalf("the app under test (%s): %v", src, err)
		}
		// One pair of control planes and one Ceph lab serve every app.
		if got, want := policies[i].SiteNames(), policies[0].SiteNames(); !slices.Equal(got, want) {
			t.Fatalf("the app %s has sites %v and %s has %v: the suite runs the apps on one pair of sites", src, got, srcs[0], want)
		}
	}
	clusters, monitors := map[string]string{}, map[string]string{}
	for i, s := range policies[0].SiteNames() {
		if i < len(labIPs) {
			monitors[s] = labIPs[i] + ":3300"
		}
		c, err := startCluster(ctx, l.run, s, l.kubeBin)
		if err != nil {
			t.Fatalf("site %s: %v", s, err)
		}
		l.sites[s] = c
		clusters[s] = c.url
	}
	t.Logf("control planes ready in %.1fs: hub %s; %v", time.Since(begin).Seconds(), l.hub.url, clusters)
	settings := filepath.Join(l.run, "rbd-dr-settings.yaml")
	var extra []string
	bulk := ""
	if adoptRuns() {
		extra = append(extra, adopteeTenant, fleetTenant)
		// The single app of many volumes, beside the examples.
		bulk = filepath.Join(l.run, "generated", "bulk")
		writeFleetApp(t, bulk, "bulk", policies[0].SiteNames(), bulkVolumes)
		srcs = append(srcs, bulk)
	}
	writeSuiteSettings(t, sourceSettings(l.root), settings, clusters, monitors, extra...)
	for _, src := range srcs {
		a := newApp(t, filepath.Join(l.bin, "argocd-rbd-dr"), src, filepath.Join(l.run, "repo-"+filepath.Base(src)), settings)
		for _, b := range l.apps {
			if b.policy.Name == a.policy.Name {
				t.Fatalf("the apps %s and %s are both called %s: their Applications would be the same", b.source, a.source, a.policy.Name)
			}
		}
		a.oneMove = src == bulk
		l.apps = append(l.apps, a)
	}
	l.app = l.apps[0]
	if adoptRuns() {
		l.adoptee = newAdoptee(t, filepath.Join(l.bin, "argocd-rbd-dr"), l.root, filepath.Join(l.run, "repo-"+adoptName), settings)
		l.fleet = newFleet(t, filepath.Join(l.bin, "argocd-rbd-dr"), filepath.Join(l.run, "repo-fleet"), settings, policies[0].SiteNames())
	}
}

// allApps are the apps under test, the adoptee and the fleet.
func (l *loop) allApps() []*app {
	out := slices.Clone(l.apps)
	if l.adoptee != nil {
		out = append(out, l.adoptee)
	}
	return append(out, l.fleet...)
}

// rendered are the apps that render from the start: all but the adoptee,
// whose volumes adopt writes.
func (l *loop) rendered() []*app { return append(slices.Clone(l.apps), l.fleet...) }
