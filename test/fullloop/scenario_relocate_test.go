package fullloop

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const stepLabel = "rbd-dr.io/step"

// hookJobs are the hook Jobs on a site by step, read from the API (the
// namespaces are the rendered Jobs').
func (l *loop) hookJobs(ctx context.Context, t *testing.T, site string) map[string]*batchv1.Job {
	t.Helper()
	out := map[string]*batchv1.Job{}
	var nss []string
	for _, role := range []string{"active", "passive"} {
		for _, j := range jobs(t, l.app.render(t, site, role)) {
			if !slices.Contains(nss, j.Namespace) {
				nss = append(nss, j.Namespace)
			}
		}
	}
	for _, ns := range nss {
		list, err := l.sites[site].client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: stepLabel})
		if err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			j := &list.Items[i]
			out[j.Labels[stepLabel]] = j
		}
	}
	return out
}

// activate is the user's failover edit: `argocd-rbd-dr activate SITE DIR
// [--force]`, committed. It returns the new revision.
func (l *loop) activate(t *testing.T, site string, force bool) string {
	t.Helper()
	args := []string{"activate", site, l.app.dir()}
	if force {
		args = append(args, "--force")
	}
	l.app.run(t, args...)
	rev := l.app.commit(t, fmt.Sprintf("activate %s (force %v)", site, force))
	if err := l.app.load(); err != nil {
		t.Fatal(err)
	}
	return rev
}

// relocate is a planned relocation to site: commit, refresh, and check the
// order (the old site's quiesce and demote finished before the new site's
// promote), the app Ready on the new site with the previous marker, and no
// --force anywhere.
func (l *loop) relocate(ctx context.Context, t *testing.T, to string) {
	from := l.app.policy.ActiveSite
	if from == to {
		t.Fatalf("%s is already active", to)
	}
	children := l.childNames(t)
	if waited := l.settle(ctx, t); waited > 2*time.Second {
		t.Logf("waited %.1fs for every image's newest snapshot to be copied before the commit", waited.Seconds())
	}
	begin := time.Now()
	rev := l.activate(t, to, false)
	if err := l.refresh(ctx, append([]string{l.parentName()}, mapValues(children)...)...); err != nil {
		t.Fatal(err)
	}
	l.waitApps(ctx, t, 8*time.Minute, "every site synced at "+rev[:8], func(a *v1alpha1.Application) bool { return synced(a, "") }, l.parentName())
	l.waitApps(ctx, t, 8*time.Minute, "every site synced at "+rev[:8], func(a *v1alpha1.Application) bool { return synced(a, rev) }, mapValues(children)...)
	l.waitServing(ctx, t, to, 3*time.Minute)
	took := time.Since(begin)
	fmt.Printf("fullloop: relocation %s -> %s: commit to Ready in %.1fs\n", from, to, took.Seconds())
	fmt.Printf("commit-to-ready relocation %d %.1f (%s, %s -> %s)\n", len(l.app.policy.Volumes), took.Seconds(), l.app.name(), from, to)
	l.breakdown(ctx, t, "relocation "+l.app.name(), []*app{l.app}, mapValues(children), begin, begin.Add(took))

	l.checkPrimary(ctx, t, to)
	old, now := l.hookJobs(ctx, t, from), l.hookJobs(ctx, t, to)
	for _, step := range []string{"quiesce", "demote"} {
		if old[step] == nil || old[step].Status.CompletionTime == nil {
			t.Fatalf("%s's %s Job did not complete: %+v", from, step, old[step])
		}
	}
	promote := now["promote"]
	if promote == nil || promote.Status.CompletionTime == nil {
		t.Fatalf("%s's promote Job did not complete", to)
	}
	if q, d := old["quiesce"].Status.CompletionTime.Time, old["demote"].Status.StartTime.Time; q.After(d) {
		t.Errorf("%s: demote started (%s) before quiesce finished (%s)", from, d.Format(time.RFC3339), q.Format(time.RFC3339))
	}
	if d, p := old["demote"].Status.CompletionTime.Time, promote.Status.CompletionTime.Time; d.After(p) {
		t.Errorf("%s's promote finished (%s) before %s's demote (%s)", to, p.Format(time.RFC3339), from, d.Format(time.RFC3339))
	}
	// Each site's Application syncs on its own (the parent's waves order
	// only the Applications' own changes); the order comes from Ceph: the
	// promote waits for the demotion. Argo CD's operation states agree.
	times := l.syncTimes(ctx, t, children)
	if times[from][1].After(times[to][1]) {
		t.Errorf("Argo CD finished syncing %s (%s) before %s (%s), whose sync demotes", to, times[to][1].Format(time.RFC3339), from, times[from][1].Format(time.RFC3339))
	}
	t.Logf("%s: quiesce done %s, demote done %s; %s: promote done %s (Jobs' own times)", from,
		old["quiesce"].Status.CompletionTime.Format(time.TimeOnly), old["demote"].Status.CompletionTime.Format(time.TimeOnly),
		to, promote.Status.CompletionTime.Format(time.TimeOnly))
	for site, js := range map[string]map[string]*batchv1.Job{from: old, to: now} {
		for step, j := range js {
			if j.CreationTimestamp.Time.Before(begin.Truncate(time.Second)) {
				continue // an earlier sync's Job (e.g. a forced promote of the disaster)
			}
			for _, c := range j.Spec.Template.Spec.Containers {
				if slices.Contains(c.Args, "--force") || slices.Contains(c.Command, "--force") {
					t.Errorf("%s's %s Job runs with --force in a planned relocation: %v %v", site, step, c.Command, c.Args)
				}
			}
		}
	}
	l.checkDemoteProof(ctx, t, from, old["demote"])
	l.lastMarkers = l.checkMarkers(ctx, t, to, l.lastMarkers)
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}
