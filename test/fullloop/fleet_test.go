package fullloop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// The fleet: fleetApps apps of two volumes each in one repository, stamped
// on every site by examples/fleet/applicationset.yaml through Argo CD's own
// ApplicationSet controller and moved by one commit (`activate SITE --all
// apps/`); and one app of bulkVolumes volumes (a StatefulSet's claims),
// put through the app-of-apps like the examples. They share the namespace
// fleet, its pool and its CephX user: one team's fleet.

const (
	fleetNS     = "fleet"
	fleetApps   = 10
	bulkVolumes = 20
	// fleetVolumeSize is small: the images are thin, and only the marker
	// block is written.
	fleetVolumeSize = "64Mi"
)

// fleetTenant is the fleet's namespace in the suite's settings. Its rpo
// is ten minutes (the lab's schedule still snapshots every minute): at the
// suite's one minute, each app's rpo-check would run every minute on both
// sites, two dozen pods a minute beside the moves being measured on two
// cores.
const fleetTenant = `namespace: fleet
project: fleet
pools: [fleet]
cephUser: fleet
cephSecret: {name: rbd-dr-ceph-fleet}
rpo: 10m`

var appSetGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applicationsets"}

// writeFleetApp writes an app folder in namespace fleet: its rbd-dr.yaml
// (active on sites[0]), a base with the workload and its claims, and an
// overlay per site. replicas > 0 makes it a StatefulSet of that many
// replicas with a claim template (the bulk app); otherwise one Deployment
// mounting two claims.
func writeFleetApp(t *testing.T, dir, name string, sites []string, replicas int) {
	t.Helper()
	var claims []string
	var workload string
	if replicas > 0 {
		for i := range replicas {
			claims = append(claims, fmt.Sprintf("data-%s-%d", name, i))
		}
		workload = fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  serviceName: %[1]s
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers: [{name: app, image: registry.test/fleet-app:1, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: %[3]s}}}
`, name, replicas, fleetVolumeSize)
	} else {
		claims = []string{name + "-data", name + "-logs"}
		workload = fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers: [{name: app, image: registry.test/fleet-app:1, volumeMounts: [{name: data, mountPath: /data}, {name: logs, mountPath: /logs}]}]
      volumes:
        - {name: data, persistentVolumeClaim: {claimName: %[1]s-data}}
        - {name: logs, persistentVolumeClaim: {claimName: %[1]s-logs}}
`, name)
	}
	var policy strings.Builder
	fmt.Fprintf(&policy, "apiVersion: rbd-dr.io/v1alpha1\nkind: FailoverPolicy\nactiveSite: %s\nforcePromote: false\napps:\n  namespace: %s\nsites:\n", sites[0], fleetNS)
	for _, s := range sites {
		fmt.Fprintf(&policy, "  - name: %s\n    overlay: overlays/%s\n", s, s)
	}
	policy.WriteString("volumes:\n")
	for _, c := range claims {
		fmt.Fprintf(&policy, "  - pvc: %s\n    pool: %s\n    image: %s\n    size: %s\n", c, fleetNS, c, fleetVolumeSize)
	}
	files := map[string]string{
		config.FileName:           policy.String(),
		"base/kustomization.yaml": "namespace: " + fleetNS + "\nresources: [workload.yaml]\n",
		"base/workload.yaml":      workload,
	}
	for _, s := range sites {
		files["overlays/"+s+"/kustomization.yaml"] = "resources: [../../base]\n"
	}
	for path, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// newFleet writes the fleet's repository: apps/fleet-00 ... in one commit.
func newFleet(t *testing.T, bin, repo, settings string, sites []string) []*app {
	t.Helper()
	var apps []*app
	for i := range fleetApps {
		name := fmt.Sprintf("fleet-%02d", i)
		a := &app{source: "generated fleet app " + name, bin: bin, repo: repo, path: "apps/" + name, settings: settings}
		writeFleetApp(t, a.dir(), name, sites, 0)
		if err := a.load(); err != nil {
			t.Fatalf("the fleet app %s: %v", name, err)
		}
		apps = append(apps, a)
	}
	apps[0].git(t, "init", "-q", "-b", "main")
	apps[0].commit(t, fmt.Sprintf("the fleet: %d apps", fleetApps))
	return apps
}

// fleetNames are the Applications the ApplicationSet makes, as its
// template names them: <folder>-<site>.
func (l *loop) fleetNames() []string {
	var out []string
	for _, a := range l.fleet {
		for _, s := range a.sites() {
			out = append(out, a.name()+"-"+s)
		}
	}
	return out
}

// createAppSet applies examples/fleet/applicationset.yaml as the platform
// would: its repository the fleet's, its sites' clusters the suite's.
func (l *loop) createAppSet(ctx context.Context, t *testing.T) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(l.root, "examples", "fleet", "applicationset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	set := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(body, &set.Object); err != nil {
		t.Fatal(err)
	}
	url := l.fleet[0].url()
	gens, _, _ := unstructured.NestedSlice(set.Object, "spec", "generators")
	matrix, _, _ := unstructured.NestedSlice(gens[0].(map[string]any), "matrix", "generators")
	if err := unstructured.SetNestedField(matrix[0].(map[string]any), url, "git", "repoURL"); err != nil {
		t.Fatal(err)
	}
	var elements []any
	for _, s := range l.app.sites() {
		elements = append(elements, map[string]any{"site": s, "cluster": l.sites[s].url})
	}
	if err := unstructured.SetNestedSlice(matrix[1].(map[string]any), elements, "list", "elements"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(gens[0].(map[string]any), matrix, "matrix", "generators"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(set.Object, gens, "spec", "generators"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(set.Object, url, "spec", "template", "spec", "source", "repoURL"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.argo.appSets.Namespace(argoNS).Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the ApplicationSet: %v", err)
	}
}

// fleetBootstrap: the ApplicationSet stamps every app on every site; every
// Application syncs, and every app serves on its active site.
func (l *loop) fleetBootstrap(ctx context.Context, t *testing.T) {
	begin := time.Now()
	l.createAppSet(ctx, t)
	rev := l.fleet[0].git(t, "rev-parse", "HEAD")
	l.waitApps(ctx, t, 10*time.Minute, "every fleet Application synced and healthy", func(a *v1alpha1.Application) bool { return synced(a, rev) }, l.fleetNames()...)
	var ws []served
	for _, a := range l.fleet {
		ws = append(ws, l.expectServing(t, a, a.policy.ActiveSite)...)
	}
	l.waitServed(ctx, t, ws, l.fleet[0].policy.ActiveSite, 5*time.Minute)
	t.Logf("%d apps serve %.1fs after the ApplicationSet was created", len(l.fleet), time.Since(begin).Seconds())
	l.fleetMarkers(ctx, t, true)
}

// fleetMarkers checks each fleet app's markers on its active site (new
// volumes, or the last markers of each app found again).
func (l *loop) fleetMarkers(ctx context.Context, t *testing.T, fresh bool) {
	t.Helper()
	keep := l.app
	defer func() { l.app = keep }()
	if l.fleetLast == nil {
		l.fleetLast = map[string]map[string]*marker{}
	}
	for _, a := range l.fleet {
		l.app = a
		prev := l.fleetLast[a.name()]
		if fresh {
			prev = nil
		}
		l.fleetLast[a.name()] = l.checkMarkers(ctx, t, a.policy.ActiveSite, prev)
	}
}

// fleetRelocate moves every fleet app to site with one commit, as a
// platform team would after (or before) losing a site: `argocd-rbd-dr
// activate SITE --all apps/`, committed, and Argo CD told of the commit as
// a git webhook tells it (the ApplicationSet refreshed, every Application of
// the repository refreshed). progressive says whether the ApplicationSet
// controller runs its RollingSync (passive sites first).
func (l *loop) fleetRelocate(ctx context.Context, t *testing.T, to string, progressive bool) {
	from := l.fleet[0].policy.ActiveSite
	l.startAppSetController(ctx, t, progressive)
	var ws []served
	volumes := 0
	for _, a := range l.fleet {
		ws = append(ws, l.expectServing(t, a, to)...)
		volumes += len(a.policy.Volumes)
	}
	keep := l.app
	var waited time.Duration
	for _, a := range l.fleet {
		l.app = a
		waited += l.settle(ctx, t)
	}
	l.app = keep
	t.Logf("waited %.1fs for every image's newest snapshot to be copied before the commit", waited.Seconds())
	begin := time.Now()
	out := l.fleet[0].run(t, "activate", to, "--all", filepath.Join(l.fleet[0].repo, "apps"))
	t.Logf("argocd-rbd-dr activate %s --all apps/:\n%s", to, out)
	rev := l.fleet[0].commit(t, "activate "+to+" for the whole fleet")
	if err := l.webhook(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range l.fleet {
		if err := a.load(); err != nil {
			t.Fatal(err)
		}
	}
	l.waitApps(ctx, t, 10*time.Minute, "every fleet Application synced at "+rev[:8], func(a *v1alpha1.Application) bool { return synced(a, rev) }, l.fleetNames()...)
	l.waitServed(ctx, t, ws, to, 5*time.Minute)
	took := time.Since(begin)
	mode := "all sites at once (no progressive syncs)"
	if progressive {
		mode = "RollingSync, passive sites first"
	}
	fmt.Printf("fleet-relocation %d %d %.1f (%s -> %s, %s)\n", len(l.fleet), volumes, took.Seconds(), from, to, mode)
	l.breakdown(ctx, t, fmt.Sprintf("fleet %s -> %s (%s)", from, to, mode), l.fleet, l.fleetNames(), begin, begin.Add(took))
	l.fleetAppBreakdown(ctx, t, begin)
	for _, a := range l.fleet {
		l.app = a
		l.checkPrimary(ctx, t, to)
	}
	l.app = keep
	l.fleetMarkers(ctx, t, false)
}

// webhook does what Argo CD does on a git push webhook for the fleet's
// repository: refresh every ApplicationSet whose git generator reads it
// (the ApplicationSet controller's webhook) and every Application whose
// source is it (argocd-server's webhook).
func (l *loop) webhook(ctx context.Context) error {
	patch := []byte(`{"metadata":{"annotations":{"argocd.argoproj.io/application-set-refresh":"true"}}}`)
	if _, err := l.argo.appSets.Namespace(argoNS).Patch(ctx, "rbd-dr-fleet", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("refreshing the ApplicationSet: %w", err)
	}
	return l.refresh(ctx, l.fleetNames()...)
}

// fleetSteady: a full sync of every fleet Application with nothing to move
// (fleetSteadySync), and the steps' own time per app over the apps whose
// sync ran them (`steady-state hook-time fleet`).
func (l *loop) fleetSteady(ctx context.Context, t *testing.T) {
	names := l.fleetNames()
	// Argo CD can take the earlier sync's hook Jobs for a new sync's
	// (gitops-engine issue 446): then no step runs. In one run it did so
	// for every app of the sync right after the fleet's move (and for the
	// example apps' steady states). A sync in which no app ran a step
	// measures nothing: the earlier hook Jobs are then deleted, as
	// BeforeHookCreation would, and the fleet synced again.
	per, reused := l.fleetSteadySync(ctx, t, names)
	if len(per) == 0 {
		t.Logf("no fleet app ran a hook step (Argo CD counted the earlier sync's hook Jobs for every app): deleting them and syncing again")
		for _, a := range l.fleet {
			l.deleteHookJobs(ctx, t, a)
		}
		if per, reused = l.fleetSteadySync(ctx, t, names); len(per) == 0 {
			t.Fatalf("no fleet app ran a hook step in the steady-state sync, even with the earlier hook Jobs deleted")
		}
	}
	slices.Sort(per)
	fmt.Printf("steady-state hook-time fleet %d median %.2f max %.2f (seconds per app: its hook steps' own time, from their logs; %d apps' syncs ran no new hook Job, Argo CD counted the earlier ones: %s)\n",
		len(per), per[len(per)/2].Seconds(), per[len(per)-1].Seconds(), len(reused), strings.Join(reused, " "))
	keep := l.app
	for _, a := range l.fleet {
		l.app = a
		l.checkPrimary(ctx, t, a.policy.ActiveSite)
	}
	l.app = keep
}

// fleetSteadySync is one full sync of every fleet Application with nothing
// to move: it prints the wall time and that time per app (`steady-state
// fleet <apps> <seconds> <seconds per app>`) and the breakdown, and returns
// each app's hook time (its steps' own time, from their last log line;
// the goal, under 1 s an app, is about it, the rest of the wall time being
// Argo CD's, the Jobs' and the pods') and the apps whose sync ran no step.
func (l *loop) fleetSteadySync(ctx context.Context, t *testing.T, names []string) (per []time.Duration, reused []string) {
	begin := time.Now()
	for _, n := range names {
		if err := l.sync(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	l.waitApps(ctx, t, 10*time.Minute, "a new full sync of every fleet Application", func(a *v1alpha1.Application) bool {
		return synced(a, "") && a.Status.OperationState.StartedAt.After(begin.Add(-time.Second))
	}, names...)
	took := time.Since(begin)
	fmt.Printf("steady-state fleet %d %.1f %.2f\n", len(l.fleet), took.Seconds(), took.Seconds()/float64(len(l.fleet)))
	// Where it went: the hooks' spans beside Argo CD's.
	l.breakdown(ctx, t, "steady-state fleet", l.fleet, names, begin, begin.Add(took))
	for _, a := range l.fleet {
		d, steps := l.hookTime(ctx, t, a, begin)
		if len(steps) == 0 {
			reused = append(reused, a.policy.Name)
			continue
		}
		t.Logf("%s: hook time %.2fs (%s)", a.policy.Name, d.Seconds(), strings.Join(steps, ", "))
		per = append(per, d)
	}
	return per, reused
}

// deleteHookJobs deletes the app's hook Jobs (not the rpo-check's) on
// every live site and waits until they are gone.
func (l *loop) deleteHookJobs(ctx context.Context, t *testing.T, a *app) {
	t.Helper()
	selector := hookJobs(a)
	background := metav1.DeletePropagationBackground
	for _, site := range a.sites() {
		if l.dead[site] {
			continue
		}
		jobs := l.sites[site].client.BatchV1()
		for _, ns := range namespaces(a.render(t, site, "active")) {
			if err := jobs.Jobs(ns).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &background}, metav1.ListOptions{LabelSelector: selector}); err != nil {
				t.Fatalf("deleting %s's hook Jobs on %s: %v", a.policy.Name, site, err)
			}
			err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
				list, err := jobs.Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
				return err == nil && len(list.Items) == 0, err
			})
			if err != nil {
				t.Fatalf("%s's hook Jobs on %s are not gone: %v", a.policy.Name, site, err)
			}
		}
	}
}
