package fullloop

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
)

// workloads are the Deployments and StatefulSets the plugin renders for a site.
func workloads(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if k := o.GetKind(); k == "Deployment" || k == "StatefulSet" {
			out = append(out, o)
		}
	}
	return out
}

// replicasOf reads spec.replicas and status.readyReplicas of a workload on
// its site.
func (l *loop) replicasOf(ctx context.Context, site string, w *unstructured.Unstructured) (want, ready int32, err error) {
	c := l.sites[site].client
	switch w.GetKind() {
	case "Deployment":
		d, err := c.AppsV1().Deployments(w.GetNamespace()).Get(ctx, w.GetName(), metav1.GetOptions{})
		if err != nil {
			return 0, 0, err
		}
		return *d.Spec.Replicas, d.Status.ReadyReplicas, nil
	case "StatefulSet":
		s, err := c.AppsV1().StatefulSets(w.GetNamespace()).Get(ctx, w.GetName(), metav1.GetOptions{})
		if err != nil {
			return 0, 0, err
		}
		return *s.Spec.Replicas, s.Status.ReadyReplicas, nil
	}
	return 0, 0, fmt.Errorf("%s is not a workload", describe(w))
}

// waitServing waits until every workload of the app runs Ready on the
// active site at the replicas git gives it, and sits at 0 on the others.
func (l *loop) waitServing(ctx context.Context, t *testing.T, active string, timeout time.Duration) {
	t.Helper()
	l.waitServed(ctx, t, l.expectServing(t, l.app, active), active, timeout)
}

// served is one workload of an app on one site, and the replicas it runs
// there once the app serves.
type served struct {
	site   string
	active bool
	obj    *unstructured.Unstructured
	want   int32 // replicas in git (1 when unset, as Kubernetes defaults it)
}

// expectServing lists the app's workloads on every live site, read from the
// rendering: at git's replicas on active, at 0 elsewhere.
func (l *loop) expectServing(t *testing.T, a *app, active string) []served {
	t.Helper()
	var ws []served
	for _, site := range a.sites() {
		if l.dead[site] {
			continue
		}
		role := "passive"
		if site == active {
			role = "active"
		}
		for _, w := range workloads(t, a.render(t, site, role)) {
			ws = append(ws, served{site, site == active, w, replicasInGit(w)})
		}
	}
	return ws
}

// replicasInGit is a rendered workload's spec.replicas, 1 when unset as
// Kubernetes defaults it. Decoded from YAML through JSON, a number is a
// float64.
func replicasInGit(w *unstructured.Unstructured) int32 {
	v, found, _ := unstructured.NestedFieldNoCopy(w.Object, "spec", "replicas")
	switch n := v.(type) {
	case int64:
		return int32(n)
	case float64:
		return int32(n)
	}
	if found {
		return -1 // neither: never matches, and the message shows it
	}
	return 1
}

// waitServed waits until every workload of ws runs as expected.
func (l *loop) waitServed(ctx context.Context, t *testing.T, ws []served, active string, timeout time.Duration) {
	t.Helper()
	var last string
	next := time.Now().Add(30 * time.Second)
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := checkAlive(); err != nil {
			return false, err
		}
		if time.Now().After(next) {
			t.Logf("still waiting for the apps to serve on %s: %s", active, last)
			next = time.Now().Add(30 * time.Second)
		}
		for _, w := range ws {
			want, ready, err := l.replicasOf(ctx, w.site, w.obj)
			if err != nil {
				last = fmt.Sprintf("%s on %s: %v", describe(w.obj), w.site, err)
				return false, nil
			}
			if w.active && (want != w.want || ready != want || want == 0) {
				last = fmt.Sprintf("%s on %s: %d/%d ready (git: %d)", describe(w.obj), w.site, ready, want, w.want)
				return false, nil
			}
			if !w.active && (want != 0 || ready != 0) {
				last = fmt.Sprintf("%s on %s (passive): replicas %d, %d ready", describe(w.obj), w.site, want, ready)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("not serving on %s only: %v; last: %s\n%s", active, err, last, l.podReport(ctx, active))
	}
}

// podReport lists the app's pods on a site with their state, for messages.
func (l *loop) podReport(ctx context.Context, site string) string {
	var b strings.Builder
	objs, err := l.app.renderE(site, "active")
	if err != nil {
		return err.Error()
	}
	for _, ns := range namespaces(objs) {
		pods, err := l.sites[site].client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			fmt.Fprintf(&b, "  %s %s/%s %s", site, p.Namespace, p.Name, p.Status.Phase)
			for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
				if cs.State.Terminated != nil {
					fmt.Fprintf(&b, " [%s exit %d %s]", cs.Name, cs.State.Terminated.ExitCode, strings.TrimSpace(cs.State.Terminated.Message))
				}
				if cs.State.Waiting != nil && cs.State.Waiting.Message != "" {
					fmt.Fprintf(&b, " [%s waiting: %s]", cs.Name, cs.State.Waiting.Message)
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// checkPrimary fails unless every image of the app is primary on want and
// on no other live site.
func (l *loop) checkPrimary(ctx context.Context, t *testing.T, want string) {
	t.Helper()
	for _, v := range l.app.policy.Volumes {
		spec := v.Spec()
		for _, site := range l.app.sites() {
			if l.dead[site] {
				continue
			}
			p, err := l.lab.primary(ctx, site, spec)
			if err != nil {
				t.Fatal(err)
			}
			if p != (site == want) {
				t.Errorf("%s: primary on %s is %v, want %v", spec, site, p, site == want)
			}
		}
	}
}

// syncTimes are when each child Application's last operation started and
// finished.
func (l *loop) syncTimes(ctx context.Context, t *testing.T, children map[string]string) map[string][2]time.Time {
	t.Helper()
	out := map[string][2]time.Time{}
	for site, name := range children {
		app, err := l.application(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		op := app.Status.OperationState
		if op == nil || op.FinishedAt == nil {
			t.Fatalf("%s has no finished operation", name)
		}
		out[site] = [2]time.Time{op.StartedAt.Time, op.FinishedAt.Time}
	}
	return out
}

// bootstrap: one parent Application renders one Application per site; the
// passive sites sync before the active one; the app runs on the active site
// only, and its images are primary there. The app finds the markers prev on
// its volumes (nil: new volumes).
func (l *loop) bootstrap(ctx context.Context, t *testing.T, prev map[string]*marker) {
	active := l.app.policy.ActiveSite
	begin := time.Now()
	l.createParent(ctx, t)
	children := l.childNames(t)
	names := []string{l.parentName()}
	for _, n := range children {
		names = append(names, n)
	}
	rev := l.app.git(t, "rev-parse", "HEAD")
	// Ten minutes: the 20-volume app's passive site has been seen to stay
	// Progressing, its sync done, until Argo CD's periodic reconcile looked
	// at it again (the controller resyncs its Applications every 3 minutes,
	// --app-resync, and refreshes one whose last reconcile is older than
	// timeout.reconciliation plus jitter: 3m38s and 5m38s after that sync
	// in two runs). The wait prints what it waits for after 2 minutes.
	l.waitApps(ctx, t, 10*time.Minute, "the app-of-apps and every site synced and healthy", func(a *v1alpha1.Application) bool { return synced(a, rev) }, names...)
	t.Logf("all Applications synced and healthy %.1fs after the parent was created", time.Since(begin).Seconds())
	l.bootstrapBreakdown(ctx, t, begin, children)
	l.waitServing(ctx, t, active, 3*time.Minute)
	t.Logf("the app serves on %s %.1fs after the parent was created", active, time.Since(begin).Seconds())
	l.checkPrimary(ctx, t, active)
	times := l.syncTimes(ctx, t, children)
	for site, tm := range times {
		if site != active && tm[1].After(times[active][0]) {
			t.Errorf("passive %s finished syncing at %s, after active %s started at %s", site, tm[1].Format(time.RFC3339), active, times[active][0].Format(time.RFC3339))
		}
	}
	l.lastMarkers = l.checkMarkers(ctx, t, active, prev)
}

// marker is what the app stand-in writes (nodeagent's marker type).
type marker struct {
	Seq    int       `json:"seq"`
	Writer string    `json:"writer"`
	Time   time.Time `json:"time"`
	Prev   *marker   `json:"prev,omitempty"`
}

// markers reads the marker of every image on a site through librbd.
func (l *loop) markers(t *testing.T, site string) map[string]*marker {
	t.Helper()
	conn := l.lab.conns[site]
	// The lab's release's python3 and librbd: the first python3 on PATH once
	// startLab set it (hack/ceph-root's wrapper), else Debian's own.
	python, err := exec.LookPath("python3")
	if err != nil || l.lab.CephRoot == "" {
		python = "/usr/bin/python3"
	}
	args := []string{"marker", "--conf", conn.conf, "--keyring", conn.keyring, "--id", conn.id, "--python", python}
	for _, v := range l.app.policy.Volumes {
		args = append(args, v.Spec())
	}
	cmd := exec.Command(filepath.Join(l.bin, "nodeagent"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reading the markers on %s: %v: %s", site, err, stderr.String())
	}
	ms := map[string]*marker{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m struct {
			Image  string  `json:"image"`
			Marker *marker `json:"marker"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("marker line %q: %v", line, err)
		}
		ms[m.Image] = m.Marker
	}
	return ms
}

// checkMarkers fails unless each image on site carries a marker written by
// the site's node whose predecessor is prev's marker for that image (none
// when prev is nil: a new volume). The app's CronJobs run once first, as
// their schedules would, so that their claims are written too. It returns
// the markers.
func (l *loop) checkMarkers(ctx context.Context, t *testing.T, site string, prev map[string]*marker) map[string]*marker {
	t.Helper()
	l.runCronJobs(ctx, t, site)
	now := l.markers(t, site)
	for spec, m := range now {
		switch {
		case m == nil:
			t.Errorf("%s on %s: no marker: the app never wrote to it", spec, site)
			continue
		case !strings.HasPrefix(m.Writer, nodeName(site)+"/"):
			t.Errorf("%s on %s: the last marker was written by %s, not by %s's app", spec, site, m.Writer, site)
		case prev == nil && m.Prev != nil:
			t.Errorf("%s on %s: a new volume, yet the app found a marker %+v", spec, site, *m.Prev)
		case prev != nil && (m.Prev == nil || prev[spec] == nil || m.Prev.Seq != prev[spec].Seq || m.Prev.Writer != prev[spec].Writer):
			t.Errorf("%s on %s: the app did not find the previous marker %+v; it found %+v", spec, site, prev[spec], m.Prev)
		}
		t.Logf("%s on %s: marker seq %d by %s at %s", spec, site, m.Seq, m.Writer, m.Time.Format(time.RFC3339))
	}
	return now
}

// runCronJobs runs each of the app's own CronJobs on site once (see
// runCronJob).
func (l *loop) runCronJobs(ctx context.Context, t *testing.T, site string) {
	t.Helper()
	l.runCronJobsOf(ctx, t, site, l.app.render(t, site, "active"))
}

// runCronJob runs a CronJob on site once now, as `kubectl create job
// --from=cronjob/NAME` does, and waits for the run to succeed: on the active
// site it is not suspended and its run writes the volume (the node agent's
// app stand-in writes its markers and ends).
func (l *loop) runCronJob(ctx context.Context, t *testing.T, site, namespace, name string) {
	t.Helper()
	c := l.sites[site].client
	cron, err := c.BatchV1().CronJobs(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cron.Spec.Suspend != nil && *cron.Spec.Suspend {
		t.Fatalf("CronJob %s/%s is suspended on %s, the active site", cron.Namespace, cron.Name, site)
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cron.Namespace, Name: fmt.Sprintf("%s-fullloop-%d", cron.Name, time.Now().Unix()),
			Labels: cron.Spec.JobTemplate.Labels, Annotations: map[string]string{"cronjob.kubernetes.io/instantiate": "manual"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cron, batchv1.SchemeGroupVersion.WithKind("CronJob"))},
		},
		Spec: cron.Spec.JobTemplate.Spec,
	}
	if job, err = c.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("running CronJob %s/%s on %s: %v", cron.Namespace, cron.Name, site, err)
	}
	begin := time.Now()
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := c.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return j.Status.Succeeded > 0, nil
	})
	if err != nil {
		t.Fatalf("the run %s of CronJob %s on %s did not succeed: %v\n%s", job.Name, cron.Name, site, err, l.podReport(ctx, site))
	}
	t.Logf("%s: CronJob %s ran once (Job %s) in %.1fs", site, cron.Name, job.Name, time.Since(begin).Seconds())
}
