package render_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil/kubefake"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/plan"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// database is an object of a custom kind that runs pods writing to data.
const database = `apiVersion: example.com/v1
kind: Database
metadata: {name: pg}
spec:
  replicas: 1
  template:
    spec:
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`

// One table of workload shapes, each run through the three readers of the
// workload model: the renderer (what it refuses, and the passive site's
// rendering stopped), the quiesce step (run as the rendered Job's command
// line says, against a fake API holding the object as the active site runs
// it) and plan (what each site's workloads do after the hooks). They must
// agree: what the renderer accepts, quiesce stops and plan says it stops;
// what it refuses, plan refuses with the same reason.
func TestShapesAgree(t *testing.T) {
	taught := []config.WorkloadKind{{Group: "example.com", Version: "v1", Kind: "Database", Resource: "databases", PodSpec: "spec.template.spec", Replicas: "spec.replicas"}}
	for _, c := range []struct {
		name   string
		claim  string // the protected claim the object mounts
		object string
		taught []config.WorkloadKind
		// kind and obj name the object; refused, when set, is what the
		// renderer's (and plan's) error must say.
		kind, obj string
		refused   string
	}{
		{name: "Deployment", claim: "data", kind: "Deployment", obj: "web", object: `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  template:
    spec:
      containers: [{name: c, image: busybox}]
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`},
		{name: "StatefulSet known only by its claim templates", claim: "data-db-0", kind: "StatefulSet", obj: "db", object: `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  template:
    spec:
      containers: [{name: c, image: busybox, volumeMounts: [{name: data, mountPath: /d}]}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 5Gi}}}
`},
		{name: "CronJob", claim: "data", kind: "CronJob", obj: "backup", object: `apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox}]
          volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`},
		{name: "Argo Rollout", claim: "data", kind: "Rollout", obj: "canary", object: `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: canary}
spec:
  replicas: 1
  template:
    spec:
      containers: [{name: c, image: busybox}]
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`},
		{name: "a kind the settings teach", claim: "data", kind: "Database", obj: "pg", taught: taught, object: database},
		{name: "a kind nobody taught", claim: "data", kind: "Database", obj: "pg", refused: "Database pg", object: database},
		{name: "a DaemonSet (cannot be stopped)", claim: "data", kind: "DaemonSet", obj: "agent", refused: "DaemonSet agent", object: `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: c, image: busybox}]
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`},
	} {
		t.Run(c.name, func(t *testing.T) {
			settings := testSettings(t)
			settings.WorkloadKinds = c.taught
			root := t.TempDir()
			writeTree(t, root, map[string]string{
				"app/rbd-dr.yaml":                strings.Replace(policy, "pvc: data", "pvc: "+c.claim, 1),
				"app/overlay/kustomization.yaml": "namespace: shop\nresources: [object.yaml]\n",
				"app/overlay/object.yaml":        c.object,
			})
			app := filepath.Join(root, "app")
			p, err := config.Load(app, root)
			if err != nil {
				t.Fatal(err)
			}
			renderAs := func(role render.Role) (*render.Result, error) {
				return render.Render(p, render.Options{RepoRoot: root, AppDir: app, Site: "a", Role: role, Namespace: "shop", Settings: settings})
			}
			// plan: site a leaves (passive), site b takes over (active).
			pl, planErr := plan.Make(p, plan.Options{RepoRoot: root, AppDir: app, Namespace: "shop", Settings: settings, To: "b"})

			passive, err := renderAs(render.Passive)
			if c.refused != "" {
				// The refusal names the file, the kind and the object.
				for what, err := range map[string]error{"render": err, "plan": planErr} {
					if err == nil || !strings.Contains(err.Error(), "overlay/object.yaml: "+c.refused) {
						t.Errorf("%s: got %v, want a refusal naming overlay/object.yaml and %q", what, err, c.refused)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("render (passive): %v", err)
			}
			if planErr != nil {
				t.Fatalf("plan: %v", planErr)
			}
			active, err := renderAs(render.Active)
			if err != nil {
				t.Fatalf("render (active): %v", err)
			}
			catalog := settings.Workloads()
			kind, ok := catalog.Lookup(groupOf(t, active, c.kind, c.obj), c.kind)
			if !ok || !kind.CanStop() {
				t.Fatalf("the model does not stop %s, yet the renderer accepted it", c.kind)
			}

			// The renderer: stopped on the passive site, as git has it on the active one.
			if o := appUnstructured(t, passive, c.kind, c.obj); !kind.Stopped(o.Object) {
				t.Errorf("render: the passive site's %s %s is not stopped", c.kind, c.obj)
			}
			running := appUnstructured(t, active, c.kind, c.obj)
			if kind.Stopped(running.Object) {
				t.Errorf("render: the active site's %s %s is stopped", c.kind, c.obj)
			}

			// quiesce, as the passive rendering's Job runs it, on the object running.
			req := quiesceRequest(t, passive)
			objs := []runtime.Object{typed(t, running)}
			if c.kind != "CronJob" { // a CronJob runs no pod between runs
				objs = append(objs, &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
					ObjectMeta: metav1.ObjectMeta{Name: c.obj + "-0", Namespace: "shop"},
					Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
						PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.claim}}}}},
					Status: corev1.PodStatus{Phase: corev1.PodRunning}})
			}
			kube := kubefake.Cluster(t, objs...)
			logger := log.New()
			logger.SetOutput(io.Discard)
			report := failover.Quiesce(context.Background(), kube, req.Namespace, req.Targets,
				failover.Options{Timeout: 10 * time.Second, Poll: time.Millisecond, Kinds: workload.Core.With(req.Kinds...), Log: logger})
			if err := report.Err(); err != nil {
				t.Fatalf("quiesce: %v", err)
			}
			if len(report) != 1 || !strings.Contains(report[0].Action, kind.StopReport(c.obj)) || report[0].After != "unused" {
				t.Errorf("quiesce: %+v, want %q and unused", report, kind.StopReport(c.obj))
			}
			gvk := running.GroupVersionKind()
			after, err := kube.Resource(schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: kind.Resource}).Namespace("shop").Get(context.Background(), c.obj, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !kind.Stopped(after.Object) {
				t.Errorf("quiesce: %s %s is not stopped after it: %v", c.kind, c.obj, after.Object["spec"])
			}

			// plan: the site that leaves stops it, the one that takes over runs it.
			for _, s := range pl.Sites {
				want := kind.StopReport(c.obj)
				if s.Role == string(render.Active) {
					want = c.kind + " " + c.obj
				}
				if !strings.Contains(s.Then, want) {
					t.Errorf("plan: site %s (%s) then %q, want it to say %q", s.Name, s.Role, s.Then, want)
				}
			}
		})
	}
}

// appUnstructured is one object of the app part of a rendering.
func appUnstructured(t *testing.T, res *render.Result, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, r := range res.App.Resources() {
		if r.GetKind() == kind && r.GetName() == name {
			// Through JSON: an API object holds int64s, not kyaml's ints.
			b, err := r.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			o := &unstructured.Unstructured{}
			if err := o.UnmarshalJSON(b); err != nil {
				t.Fatal(err)
			}
			return o
		}
	}
	t.Fatalf("no %s %s in the app", kind, name)
	return nil
}

// typed is obj as client-go's type for its kind, when it has one: the fake
// API keeps built-in kinds typed.
func typed(t *testing.T, obj *unstructured.Unstructured) runtime.Object {
	t.Helper()
	out, err := scheme.Scheme.New(obj.GroupVersionKind())
	if err != nil {
		return obj // a custom kind
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func groupOf(t *testing.T, res *render.Result, kind, name string) string {
	t.Helper()
	return appUnstructured(t, res, kind, name).GroupVersionKind().Group
}

// quiesceRequest is the rendered quiesce Job's command line, parsed by the
// hook contract.
func quiesceRequest(t *testing.T, res *render.Result) hookcmd.Request {
	t.Helper()
	for _, obj := range objects(t, toYAML(t, res)) {
		if obj.GetKind() != "Job" || obj.GetLabels()["rbd-dr.io/step"] != string(hookcmd.Quiesce) {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
		args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		req, err := hookcmd.Parse(string(hookcmd.Quiesce), args)
		if err != nil {
			t.Fatalf("the quiesce Job's args %v: %v", args, err)
		}
		return req
	}
	t.Fatal("no quiesce Job in the passive rendering")
	return hookcmd.Request{}
}
