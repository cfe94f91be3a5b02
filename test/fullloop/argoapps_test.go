package fullloop

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// parentName is the app-of-apps Application.
func (l *loop) parentName() string { return l.app.policy.Name + "-dr" }

// createParent creates the one parent Application (MODE=apps) on the hub.
func (l *loop) createParent(ctx context.Context, t *testing.T) {
	t.Helper()
	app := &v1alpha1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Name: l.parentName(), Namespace: argoNS},
		Spec: v1alpha1.ApplicationSpec{
			Project: "default",
			Source: &v1alpha1.ApplicationSource{
				RepoURL: l.app.url(), Path: l.app.path, TargetRevision: "main",
				Plugin: &v1alpha1.ApplicationSourcePlugin{Name: "rbd-dr", Env: v1alpha1.Env{{Name: "MODE", Value: "apps"}}},
			},
			Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: argoNS},
			SyncPolicy:  &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{SelfHeal: true}},
		},
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(app)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.argo.apps.Namespace(argoNS).Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the parent Application: %v", err)
	}
}

// application reads an Application from the hub.
func (l *loop) application(ctx context.Context, name string) (*v1alpha1.Application, error) {
	u, err := l.argo.apps.Namespace(argoNS).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return toApplication(u)
}

// refresh asks Argo CD to look at git again now (the annotation the UI's
// Refresh button sets), instead of waiting for its polling period.
func (l *loop) refresh(ctx context.Context, names ...string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{"argocd.argoproj.io/refresh": "normal"}}})
	for _, n := range names {
		if _, err := l.argo.apps.Namespace(argoNS).Patch(ctx, n, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("refreshing %s: %w", n, err)
		}
	}
	return nil
}

// childNames are the per-site Applications the app-of-apps renders, by site.
func (l *loop) childNames(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range l.app.render(t, "", "") {
		app, err := toApplication(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range app.Spec.Source.Plugin.Env {
			if e.Name == "SITE" {
				out[e.Value] = app.Name
			}
		}
	}
	if len(out) != len(l.app.sites()) {
		t.Fatalf("the app-of-apps renders %v for sites %v", out, l.app.sites())
	}
	return out
}

// synced is an Application that has synced revision rev (any when "")
// successfully and is Healthy.
func synced(app *v1alpha1.Application, rev string) bool {
	op := app.Status.OperationState
	return op != nil && op.Phase == "Succeeded" && app.Operation == nil &&
		(rev == "" || op.SyncResult != nil && op.SyncResult.Revision == rev) &&
		app.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced &&
		app.Status.Health.Status == "Healthy"
}

// current is an Application that compared revision rev with its site and
// found it Synced and Healthy (a change to hooks alone syncs nothing).
func current(app *v1alpha1.Application, rev string) bool {
	return app.Status.Sync.Revision == rev && app.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced &&
		app.Status.Health.Status == "Healthy" && app.Operation == nil
}

// explain is what an Application is doing, for a timeout message: the
// operation's phase and message, and each hook's own message (a failing hook
// shows only as Running/retrying at the operation level).
func explain(app *v1alpha1.Application) string {
	if app == nil {
		return "not found"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sync %s, health %s", app.Status.Sync.Status, app.Status.Health.Status)
	if op := app.Status.OperationState; op != nil {
		fmt.Fprintf(&b, "; operation %s: %s", op.Phase, op.Message)
		if op.SyncResult != nil {
			for _, r := range op.SyncResult.Resources {
				if r.HookType != "" || r.Status != "Synced" {
					fmt.Fprintf(&b, "\n    %s %s/%s %s %s: %s", r.Kind, r.Namespace, r.Name, r.HookPhase, r.Status, r.Message)
				}
			}
		}
	}
	for _, c := range app.Status.Conditions {
		fmt.Fprintf(&b, "\n    condition %s: %s", c.Type, c.Message)
	}
	for _, r := range app.Status.Resources {
		if r.Health != nil && r.Health.Status != "Healthy" {
			fmt.Fprintf(&b, "\n    %s %s/%s health %s: %s", r.Kind, r.Namespace, r.Name, r.Health.Status, r.Health.Message)
		}
	}
	if app.Status.ReconciledAt != nil {
		fmt.Fprintf(&b, "\n    last reconciled by Argo CD at %s", app.Status.ReconciledAt.Format(time.RFC3339))
	}
	return b.String()
}

// brief is an Application's state in one line: sync and health, the
// revision compared, and the operation's phase and start.
func brief(app *v1alpha1.Application) string {
	rev := app.Status.Sync.Revision
	if len(rev) > 8 {
		rev = rev[:8]
	}
	s := fmt.Sprintf("%s/%s at %s", app.Status.Sync.Status, app.Status.Health.Status, rev)
	if op := app.Status.OperationState; op != nil {
		s += fmt.Sprintf(", operation %s (started %s)", op.Phase, op.StartedAt.UTC().Format(time.TimeOnly))
	}
	if app.Operation != nil {
		s += ", operation requested"
	}
	for _, r := range app.Status.Resources {
		if r.Health != nil && r.Health.Status != "Healthy" {
			s += fmt.Sprintf("; %s %s %s", r.Kind, r.Name, r.Health.Status)
		}
		if r.Status != v1alpha1.SyncStatusCodeSynced {
			s += fmt.Sprintf("; %s %s %s", r.Kind, r.Name, r.Status)
		}
	}
	return s
}

// waitApps waits until every named Application satisfies ok.
func (l *loop) waitApps(ctx context.Context, t *testing.T, timeout time.Duration, what string, ok func(*v1alpha1.Application) bool, names ...string) {
	t.Helper()
	last := map[string]*v1alpha1.Application{}
	begin := time.Now()
	reported := begin
	// timeline: each Application's state whenever it changes, logged at the
	// end: what a long wait waited for, after the fact.
	seen := map[string]string{}
	var timeline []string
	defer func() {
		t.Logf("%s, each Application's state as it changed:\n%s", what, strings.Join(timeline, "\n"))
	}()
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		if err := checkAlive(); err != nil {
			return false, err
		}
		all := true
		var waiting []string
		for _, n := range names {
			app, err := l.application(ctx, n)
			if apierrors.IsNotFound(err) {
				delete(last, n)
			}
			if err != nil {
				// a read cut short (the poll's deadline) keeps the last one
				all = false
				continue
			}
			last[n] = app
			if st := brief(app); st != seen[n] {
				seen[n] = st
				timeline = append(timeline, fmt.Sprintf("  +%.0fs %s: %s", time.Since(begin).Seconds(), n, st))
			}
			if !ok(app) {
				all = false
				waiting = append(waiting, fmt.Sprintf("\n  %s: %s", n, explain(app)))
			}
		}
		// Evidence while it lasts, every two minutes: what a long wait waits for.
		if !all && time.Since(reported) > 2*time.Minute {
			reported = time.Now()
			fmt.Printf("fullloop: still waiting for %s after %.0fs:%s\n", what, time.Since(begin).Seconds(), strings.Join(waiting, ""))
		}
		return all, nil
	})
	if err != nil {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "\n  %s: %s", n, explain(last[n]))
		}
		t.Fatalf("waiting for %s: %v%s", what, err, b.String())
	}
}

// toApplication decodes an Application through JSON (Argo CD's types have
// fields the unstructured converter cannot set).
func toApplication(u *unstructured.Unstructured) (*v1alpha1.Application, error) {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	app := &v1alpha1.Application{}
	if err := json.Unmarshal(b, app); err != nil {
		return nil, fmt.Errorf("%s: %w", describe(u), err)
	}
	return app, nil
}
