package fullloop

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// disaster: the active site's API server, controller-manager, scheduler,
// etcd, node (with the app's processes) and Ceph daemons are SIGKILLed.
// `activate --force` + commit: the survivor promotes and runs the app with
// the last marker that had replicated. Then the lost site returns: its own
// sync quiesces, demotes and resyncs; its images replay from the survivor;
// forcePromote goes back to false and a planned relocation back works.
func (l *loop) disaster(ctx context.Context, t *testing.T) {
	lost := l.app.policy.ActiveSite
	var survivor string
	for _, s := range l.app.sites() {
		if s != lost {
			survivor = s
		}
	}
	children := l.childNames(t)
	// What the survivor holds now is what it will promote: read its
	// non-primary copies before the lost site goes.
	replicated := l.markers(t, survivor)

	c := l.sites[lost]
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].kill()
	}
	if _, err := l.lab.Run("kill", l.lab.labOf[lost]); err != nil {
		t.Fatalf("%s: %v", lost, err)
	}
	l.dead[lost] = true
	t.Logf("%s is gone: control plane, node and Ceph daemons SIGKILLed", lost)

	begin := time.Now()
	rev := l.activate(t, survivor, true)
	if err := l.refresh(ctx, l.parentName(), children[survivor]); err != nil {
		t.Fatal(err)
	}
	l.waitApps(ctx, t, 10*time.Minute, survivor+" synced at "+rev[:8]+" with the other site gone",
		func(a *v1alpha1.Application) bool { return synced(a, rev) }, children[survivor])
	l.waitServing(ctx, t, survivor, 3*time.Minute)
	took := time.Since(begin)
	fmt.Printf("fullloop: disaster failover to %s: commit to Ready in %.1fs\n", survivor, took.Seconds())
	// Where it went: the forced promote waits for the lost site's records
	// to expire (down+); an rpo-check Job that ran before the promote was
	// seen to fail on the copy (its primary gone) and to hold the app
	// Degraded until the next one passed, a minute later.
	l.breakdown(ctx, t, "disaster "+l.app.name()+" to "+survivor, []*app{l.app}, []string{children[survivor]}, begin, begin.Add(took))
	l.checkPrimary(ctx, t, survivor)
	l.lastMarkers = l.checkMarkers(ctx, t, survivor, replicated)
	for spec, m := range replicated {
		if m != nil {
			fmt.Printf("fullloop: %s: the survivor's data is the marker written %s ago (%s)\n", spec, time.Since(m.Time).Round(time.Second), m.Writer)
		}
	}
	if age := l.promoteAge(ctx, t, survivor); age != "" {
		fmt.Printf("fullloop: the promote Job reports: %s\n", age)
	}

	// The lost site returns, its data and all.
	begin = time.Now()
	for i, p := range c.procs {
		np, err := p.restart()
		if err != nil {
			t.Fatal(err)
		}
		c.procs[i] = np
		if p == l.nodes[lost] {
			l.nodes[lost] = np
		}
		if p.name == "kube-apiserver" {
			if err := c.waitHealthy(ctx, np); err != nil {
				t.Fatalf("%s's API server did not come back: %v", lost, err)
			}
		}
	}
	if _, err := l.lab.Run("start", l.lab.labOf[lost]); err != nil {
		t.Fatalf("%s: %v", lost, err)
	}
	delete(l.dead, lost)
	t.Logf("%s is back in %.1fs", lost, time.Since(begin).Seconds())
	if err := l.refresh(ctx, children[lost]); err != nil {
		t.Fatal(err)
	}
	l.waitApps(ctx, t, 10*time.Minute, lost+" synced (quiesce, demote, resync) after its return",
		func(a *v1alpha1.Application) bool { return synced(a, rev) }, children[lost])
	l.waitServing(ctx, t, survivor, 3*time.Minute)
	l.waitReplaying(ctx, t, lost)
	fmt.Printf("fullloop: %s back and replaying from %s %.1fs after its return\n", lost, survivor, time.Since(begin).Seconds())
	l.checkPrimary(ctx, t, survivor)

	// Failback: forcePromote back to false, then a planned relocation.
	rev = l.activate(t, survivor, false)
	if err := l.refresh(ctx, append([]string{l.parentName()}, mapValues(children)...)...); err != nil {
		t.Fatal(err)
	}
	// forcePromote changes only the hooks: the sites stay Synced.
	l.waitApps(ctx, t, 8*time.Minute, "every site at forcePromote false", func(a *v1alpha1.Application) bool { return current(a, rev) }, mapValues(children)...)
	l.relocate(ctx, t, lost)
}

// waitReplaying waits until every image on site is a non-primary copy that
// replays from the peer.
func (l *loop) waitReplaying(ctx context.Context, t *testing.T, site string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, v := range l.app.policy.Volumes {
			spec := v.Spec()
			out, err := l.lab.rbd(ctx, site, "mirror", "image", "status", spec)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			last = spec + ": " + strings.TrimSpace(string(out))
			if !regexp.MustCompile(`state:\s+up\+replaying`).Match(out) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s's images do not replay from the peer: %v; last: %s", site, err, last)
	}
}

// promoteAge is the line of the promote Job's log that states how old the
// promoted data is.
func (l *loop) promoteAge(ctx context.Context, t *testing.T, site string) string {
	t.Helper()
	for _, line := range strings.Split(l.jobLog(ctx, site, l.hookJobs(ctx, t, site)["promote"]), "\n") {
		if strings.Contains(strings.ToLower(line), "old") || strings.Contains(line, "age") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// jobLog is the log of the Job's pod that succeeded, or "".
func (l *loop) jobLog(ctx context.Context, site string, j *batchv1.Job) string {
	if j == nil {
		return ""
	}
	pods, err := l.sites[site].client.CoreV1().Pods(j.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + j.Name})
	if err != nil {
		return ""
	}
	for i := range pods.Items {
		if p := &pods.Items[i]; p.Status.Phase == corev1.PodSucceeded {
			return l.podLog(site, p, p.Spec.Containers[0].Name)
		}
	}
	return ""
}
