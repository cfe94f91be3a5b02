package fullloop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	yamlv3 "sigs.k8s.io/yaml/goyaml.v3"
)

// setHookTiming is a user's edit of the hooks' timing in rbd-dr.yaml (a
// step may wait this long; the Jobs are not retried), so that a refused
// quiesce fails in seconds rather than after the default 15 minutes.
func setHookTiming(body []byte, timeout string, backoffLimit int) ([]byte, error) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	hooks := mapValue(root, "hooks")
	if hooks == nil {
		hooks = &yamlv3.Node{Kind: yamlv3.MappingNode}
		root.Content = append(root.Content, &yamlv3.Node{Kind: yamlv3.ScalarNode, Value: "hooks"}, hooks)
	}
	set := func(k, v string, tag string) {
		if n := mapValue(hooks, k); n != nil {
			n.Value, n.Tag, n.Style = v, tag, 0
			return
		}
		hooks.Content = append(hooks.Content, &yamlv3.Node{Kind: yamlv3.ScalarNode, Value: k}, &yamlv3.Node{Kind: yamlv3.ScalarNode, Value: v, Tag: tag})
	}
	set("timeout", timeout, "!!str")
	set("backoffLimit", fmt.Sprint(backoffLimit), "!!int")
	return yamlv3.Marshal(&doc)
}

// quiesceRefuses: a pod outside Argo CD's control keeps a PVC of the app in
// use on the site that is to be demoted. Its quiesce Job must fail naming
// that pod, nothing may be demoted (the images stay primary there), and the
// failure must show in the Application's operation state. Once the pod is
// gone, the retried sync completes the relocation.
func (l *loop) quiesceRefuses(ctx context.Context, t *testing.T) {
	from := l.app.policy.ActiveSite
	var to string
	for _, s := range l.app.sites() {
		if s != from {
			to = s
		}
	}
	children := l.childNames(t)
	file := filepath.Join(l.app.dir(), "rbd-dr.yaml")
	original, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := setHookTiming(original, "20s", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, fast, 0o644); err != nil {
		t.Fatal(err)
	}
	rev := l.app.commit(t, "hooks: timeout 20s, no retries")
	if err := l.refresh(ctx, mapValues(children)...); err != nil {
		t.Fatal(err)
	}
	// Hooks are not compared, so the sites stay Synced: the next sync uses it.
	l.waitApps(ctx, t, 5*time.Minute, "every site at the short hook timing", func(a *v1alpha1.Application) bool { return current(a, rev) }, mapValues(children)...)

	// The holder: a bare pod with the first volume's PVC, not owned by
	// anything that quiesce scales.
	vol := l.app.policy.Volumes[0]
	ns := l.pvcNamespace(t, from, vol.PVC)
	_, ceph := hookImages(t, l.app.render(t, from, "active"))
	holder := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "fullloop-holder", Namespace: ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "hold", Image: ceph, Command: []string{"sleep", "infinity"}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: vol.PVC}}}},
			TerminationGracePeriodSeconds: ptr(int64(1)),
		},
	}
	pods := l.sites[from].client.CoreV1().Pods(ns)
	if _, err := pods.Create(ctx, holder, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, holder.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	}); err != nil {
		t.Fatalf("the holder pod did not run on %s: %v", from, err)
	}

	begin := time.Now()
	rev = l.activate(t, to, false)
	if err := l.refresh(ctx, append([]string{l.parentName()}, mapValues(children)...)...); err != nil {
		t.Fatal(err)
	}
	// The failure as Argo CD reports it: the operation keeps running
	// (retrying); the hook's own result says why.
	var message string
	l.waitApps(ctx, t, 5*time.Minute, from+"'s quiesce hook failing", func(a *v1alpha1.Application) bool {
		op := a.Status.OperationState
		if op == nil || op.SyncResult == nil || op.SyncResult.Revision != rev {
			return false
		}
		for _, r := range op.SyncResult.Resources {
			if r.Kind == "Job" && strings.Contains(r.Name, "quiesce") && r.HookPhase == "Failed" {
				message = fmt.Sprintf("operation %s (%s); hook %s/%s %s: %s", op.Phase, op.Message, r.Namespace, r.Name, r.HookPhase, r.Message)
				return true
			}
		}
		return false
	}, children[from])
	t.Logf("%s's Application after %.1fs: %s", from, time.Since(begin).Seconds(), message)
	j := l.hookJobs(ctx, t, from)["quiesce"]
	if j == nil {
		t.Fatal("no quiesce Job")
	}
	jobPods, err := l.sites[from].client.CoreV1().Pods(j.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + j.Name})
	if err != nil || len(jobPods.Items) == 0 {
		t.Fatalf("the quiesce Job's pods: %v", err)
	}
	log := l.podLog(from, &jobPods.Items[0], jobPods.Items[0].Spec.Containers[0].Name)
	if !strings.Contains(log, holder.Name) {
		t.Errorf("the quiesce Job's log does not name the pod that holds the volume (%s):\n%s", holder.Name, log)
	}
	if d := l.hookJobs(ctx, t, from)["demote"]; d != nil && d.CreationTimestamp.After(begin) {
		t.Errorf("a demote Job was created on %s although quiesce failed", from)
	}
	l.checkPrimary(ctx, t, from)
	fmt.Printf("fullloop: quiesce refused on %s in %.1fs, naming %s/%s; images still primary there\n", from, time.Since(begin).Seconds(), ns, holder.Name)

	// The operator stops the holder; Argo CD's retry completes the move.
	if err := pods.Delete(ctx, holder.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	l.waitApps(ctx, t, 8*time.Minute, "every site synced after the holder left", func(a *v1alpha1.Application) bool { return synced(a, rev) }, mapValues(children)...)
	l.waitServing(ctx, t, to, 3*time.Minute)
	l.checkPrimary(ctx, t, to)
	l.lastMarkers = l.checkMarkers(ctx, t, to, l.lastMarkers)

	// Back to the app's own hook timing.
	if err := os.WriteFile(file, append([]byte(nil), original...), 0o644); err != nil {
		t.Fatal(err)
	}
	l.app.run(t, "activate", to, l.app.dir())
	rev = l.app.commit(t, "hooks: the app's own timing again")
	if err := l.refresh(ctx, mapValues(children)...); err != nil {
		t.Fatal(err)
	}
	l.waitApps(ctx, t, 5*time.Minute, "every site at the app's own hook timing", func(a *v1alpha1.Application) bool { return current(a, rev) }, mapValues(children)...)
}

// pvcNamespace is the namespace of a PVC in what the plugin renders for site.
func (l *loop) pvcNamespace(t *testing.T, site, pvc string) string {
	t.Helper()
	for _, o := range l.app.render(t, site, "active") {
		if o.GetKind() == "PersistentVolumeClaim" && o.GetName() == pvc {
			return o.GetNamespace()
		}
	}
	t.Fatalf("no PVC %s in what %s renders", pvc, site)
	return ""
}
