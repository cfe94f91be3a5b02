package fullloop

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// sync asks Argo CD for a full sync of an Application now, as `argocd app
// sync` does: it sets the operation field.
func (l *loop) sync(ctx context.Context, name string) error {
	patch, _ := json.Marshal(map[string]any{"operation": map[string]any{
		"initiatedBy": map[string]any{"username": "fullloop"},
		"sync":        map[string]any{"revision": "main"},
	}})
	_, err := l.argo.apps.Namespace(argoNS).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// appPods are the UIDs of the app's running pods on a site.
func (l *loop) appPods(ctx context.Context, t *testing.T, site string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, w := range workloads(t, l.app.render(t, site, "active")) {
		pods, err := l.sites[site].client.CoreV1().Pods(w.GetNamespace()).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Labels["job-name"] == "" {
				out[p.Namespace+"/"+p.Name] = string(p.UID)
			}
		}
	}
	return out
}

// steady: a full sync of every site with nothing changed in git runs every
// hook, and they find nothing to do: the images keep their roles and the
// app's pods keep running (the same pods).
func (l *loop) steady(ctx context.Context, t *testing.T) {
	active := l.app.policy.ActiveSite
	children := l.childNames(t)
	before := l.appPods(ctx, t, active)
	begin := time.Now()
	for _, n := range children {
		if err := l.sync(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	since := metav1.NewTime(begin.Add(-time.Second))
	l.waitApps(ctx, t, 5*time.Minute, "a new full sync of every site", func(a *v1alpha1.Application) bool {
		return synced(a, "") && a.Status.OperationState.StartedAt.After(since.Time)
	}, mapValues(children)...)
	took := time.Since(begin)
	fmt.Printf("fullloop: steady-state sync of %d sites with nothing changed: %.1fs\n", len(children), took.Seconds())
	for site, name := range children {
		app, err := l.application(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		hooks := 0
		for _, r := range app.Status.OperationState.SyncResult.Resources {
			if r.HookType == "PreSync" {
				hooks++
				if r.HookPhase != "Succeeded" {
					t.Errorf("%s: hook %s/%s %s: %s", site, r.Kind, r.Name, r.HookPhase, r.Message)
				}
			}
		}
		if hooks == 0 {
			t.Errorf("%s: the sync ran no PreSync hook", site)
		}
		t.Logf("%s: %d PreSync hooks ran and succeeded", site, hooks)
	}
	// Evidence for an open question (scenario_rbac_test.go): were the hook
	// Jobs this sync reports made by it, or did a stale one count?
	for _, site := range l.app.sites() {
		role := "passive"
		if site == active {
			role = "active"
		}
		rendered := map[string]bool{}
		for _, j := range jobs(t, l.app.render(t, site, role)) {
			rendered[j.Labels[stepLabel]] = true
		}
		for step, j := range l.hookJobs(ctx, t, site) {
			if rendered[step] && j.CreationTimestamp.Time.Before(since.Time) {
				fmt.Printf("fullloop: steady state: %s's %s Job %s was made at %s, before this sync began (%s)\n", site, step, j.Name, j.CreationTimestamp.Format(time.RFC3339), since.Format(time.RFC3339))
			}
		}
	}
	// The hook time of one app's sync that moves nothing: its steps' own
	// time, without the Jobs' and pods' start (the goal: under 1 s).
	if d, steps := l.hookTime(ctx, t, l.app, begin); len(steps) > 0 {
		fmt.Printf("steady-state hook-time %s %.2f (%s)\n", l.app.policy.Name, d.Seconds(), strings.Join(steps, ", "))
	} else {
		fmt.Printf("steady-state hook-time %s none: the sync ran no new hook Job (Argo CD counted the earlier ones)\n", l.app.policy.Name)
	}
	l.checkPrimary(ctx, t, active)
	after := l.appPods(ctx, t, active)
	for name, uid := range before {
		if after[name] != uid {
			t.Errorf("%s on %s was replaced or stopped by a sync that had nothing to do", name, active)
		}
	}
}
