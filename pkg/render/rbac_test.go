package render_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	log "github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil/kubefake"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// The quiesce Role grants exactly what the quiesce step does against the API
// (failover.Quiesce run against a fake API, every request recorded): nothing
// it does is refused, and no right goes unused.
func TestQuiesceRoleIsWhatQuiesceUses(t *testing.T) {
	// The WordPress example: the core kinds only.
	t.Run("core", func(t *testing.T) {
		checkQuiesceRole(t, renderExample(t, "site-b", render.Passive, nil), false)
	})
	// An app with an Argo Rollout and a kind the settings teach: the Role
	// grants them too, and the quiesce Job's command line carries them.
	t.Run("rollout-and-taught-kind", func(t *testing.T) {
		settings := testSettings(t)
		settings.WorkloadKinds = []config.WorkloadKind{{Group: "example.com", Version: "v1", Kind: "Database", Resource: "databases", PodSpec: "spec.template.spec", Replicas: "spec.replicas"}}
		res, err := renderInlineWith(t, render.Passive, map[string]string{
			"app/overlay/kustomization.yaml": "resources: [writer.yaml, more.yaml]\n",
			"app/overlay/writer.yaml":        writer,
			"app/overlay/more.yaml":          rolloutAndDatabase,
		}, settings)
		if err != nil {
			t.Fatal(err)
		}
		checkQuiesceRole(t, res, true)
	})
}

// rolloutAndDatabase write to the claim data in namespace shop.
const rolloutAndDatabase = `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: canary, namespace: shop}
spec:
  replicas: 1
  template:
    spec:
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: example.com/v1
kind: Database
metadata: {name: pg, namespace: shop}
spec:
  replicas: 1
  template:
    spec:
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`

// checkQuiesceRole runs quiesce, as the rendered Job's command line says,
// against a fake API holding a writer of each kind it should stop (with
// custom: a Rollout and a Database too), and compares every request with
// the rendered Role.
func checkQuiesceRole(t *testing.T, res *render.Result, custom bool) {
	t.Helper()
	var role rbacv1.Role
	var namespace string
	var pvcs []string
	var step hookcmd.Request
	for _, obj := range objects(t, toYAML(t, res)) {
		switch obj.GetKind() {
		case "Job":
			if obj.GetLabels()["rbd-dr.io/step"] != string(hookcmd.Quiesce) {
				continue
			}
			containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
			args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
			var err error
			if step, err = hookcmd.Parse(string(hookcmd.Quiesce), args); err != nil {
				t.Fatalf("the quiesce Job's args %v: %v", args, err)
			}
		case "Role":
			if obj.GetLabels()["rbd-dr.io/step"] != string(hookcmd.Quiesce) {
				continue
			}
			if err := yaml.UnmarshalStrict(mustJSON(t, obj), &role); err != nil {
				t.Fatal(err)
			}
		case "PersistentVolumeClaim":
			pvcs = append(pvcs, obj.GetName())
			namespace = obj.GetNamespace()
		}
	}
	if role.Name == "" || len(pvcs) == 0 {
		t.Fatalf("no quiesce Role (%q) or PVCs (%v) in site-b's rendering", role.Name, pvcs)
	}

	// A Deployment and a StatefulSet each mount a PVC and run a pod; scaling
	// one to 0 removes its pod, as the controllers would. A CronJob mounts
	// one too (it runs no pod now): quiesce suspends it.
	one := int32(1)
	template := func(pvc string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data",
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc}}}}}}
	}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: namespace} }
	pod := func(name, pvc string) *corev1.Pod {
		return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta(name),
			Spec: template(pvc).Spec, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	objs := []runtime.Object{
		&appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta("web"),
			Spec: appsv1.DeploymentSpec{Replicas: &one, Template: template(pvcs[0])}},
		&appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: meta("db"),
			Spec: appsv1.StatefulSetSpec{Replicas: &one, Template: template(pvcs[len(pvcs)-1])}},
		pod("web-0", pvcs[0]), pod("db-0", pvcs[len(pvcs)-1]),
		&batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: meta("backup"),
			Spec: batchv1.CronJobSpec{Schedule: "0 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(pvcs[0])}}}},
	}
	if custom {
		// An Argo Rollout, and an object of the taught kind, each with a pod.
		objs = append(objs, customObject("argoproj.io/v1alpha1", "Rollout", "canary", namespace, pvcs[0]), pod("canary-0", pvcs[0]),
			customObject("example.com/v1", "Database", "pg", namespace, pvcs[len(pvcs)-1]), pod("pg-0", pvcs[len(pvcs)-1]))
	}
	kube := kubefake.Cluster(t, objs...)

	logger := log.New()
	logger.SetOutput(io.Discard)
	kinds := workload.Core.With(step.Kinds...)
	report := failover.Quiesce(context.Background(), kube, namespace, pvcs, failover.Options{Timeout: 10 * time.Second, Poll: time.Millisecond, Kinds: kinds, Log: logger})
	if err := report.Err(); err != nil {
		t.Fatalf("quiesce: %v", err)
	}

	type right struct{ group, resource, verb string }
	granted := map[right]bool{}
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					granted[right{g, res, v}] = false
				}
			}
		}
	}
	for _, a := range kube.Actions() {
		resource := a.GetResource().Resource
		if a.GetSubresource() != "" {
			resource += "/" + a.GetSubresource()
		}
		r := right{a.GetResource().Group, resource, a.GetVerb()}
		if _, ok := granted[r]; !ok {
			t.Errorf("quiesce does %s %s (group %q), which Role %s does not grant", r.verb, r.resource, r.group, role.Name)
			continue
		}
		granted[r] = true
	}
	var unused []string
	for r, used := range granted {
		if !used {
			unused = append(unused, fmt.Sprintf("%s %s (group %q)", r.verb, r.resource, r.group))
		}
	}
	slices.Sort(unused)
	if len(unused) > 0 {
		t.Errorf("Role %s grants what quiesce never does: %v", role.Name, unused)
	}
}

// customObject is an object of a kind outside client-go's scheme, with one
// replica whose pods mount pvc.
func customObject(apiVersion, kind, name, namespace, pvc string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec": map[string]any{"replicas": int64(1), "template": map[string]any{"spec": map[string]any{
			"volumes": []any{map[string]any{"name": "data", "persistentVolumeClaim": map[string]any{"claimName": pvc}}},
		}}},
	}}
}

// The demote Role grants exactly what demote does against the API: it lists
// the pods that mount each image's claim (failover.PodsMounting, run as the
// rendered Job's command line says); its pod runs as that Role's account,
// and the other Ceph Jobs get no token.
func TestDemoteRoleIsWhatDemoteUses(t *testing.T) {
	res := renderExample(t, "site-b", render.Passive, nil)
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	var demote hookcmd.Request
	var pod corev1.PodSpec
	for _, obj := range objects(t, toYAML(t, res)) {
		step := obj.GetLabels()["rbd-dr.io/step"]
		switch {
		case obj.GetKind() == "Job" && step == string(hookcmd.Demote):
			var job batchv1.Job
			if err := yaml.UnmarshalStrict(mustJSON(t, obj), &job); err != nil {
				t.Fatal(err)
			}
			pod = job.Spec.Template.Spec
			var err error
			if demote, err = hookcmd.Parse(string(hookcmd.Demote), pod.Containers[0].Args); err != nil {
				t.Fatalf("the demote Job's args: %v", err)
			}
		case obj.GetKind() == "Role" && step == string(hookcmd.Demote):
			if err := yaml.UnmarshalStrict(mustJSON(t, obj), &role); err != nil {
				t.Fatal(err)
			}
		case obj.GetKind() == "RoleBinding" && step == string(hookcmd.Demote):
			if err := yaml.UnmarshalStrict(mustJSON(t, obj), &binding); err != nil {
				t.Fatal(err)
			}
		}
	}
	if role.Name == "" || len(demote.Claims) == 0 || demote.Namespace != role.Namespace {
		t.Fatalf("demote Role %q, claims %v in %q", role.Name, demote.Claims, demote.Namespace)
	}
	if pod.ServiceAccountName != role.Name || pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken ||
		binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Name != role.Name {
		t.Errorf("the demote pod runs as %q (token %v); binding %+v", pod.ServiceAccountName, pod.AutomountServiceAccountToken, binding)
	}
	images, err := demote.Images()
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]string{}
	for i, img := range images {
		claims[img.String()] = demote.Claims[i]
	}
	kube := kubefake.Cluster(t)
	inUse := failover.PodsMounting(kube, demote.Namespace, claims)
	for _, img := range images {
		if pods, err := inUse(context.Background(), img); err != nil || len(pods) != 0 {
			t.Errorf("%s: %v %v", img, pods, err)
		}
	}
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}}
	for _, a := range kube.Actions() {
		if a.GetResource().Resource != "pods" || a.GetVerb() != "list" || a.GetNamespace() != demote.Namespace {
			t.Errorf("demote does %s %s in %q, which its Role does not grant", a.GetVerb(), a.GetResource().Resource, a.GetNamespace())
		}
	}
	if len(kube.Actions()) == 0 || fmt.Sprint(role.Rules) != fmt.Sprint(want) {
		t.Errorf("demote made %d requests; its Role grants %+v, want %+v", len(kube.Actions()), role.Rules, want)
	}
	// the other Ceph Jobs run without a token
	for _, r := range []render.Role{render.Active, render.Passive} {
		for _, obj := range objects(t, toYAML(t, renderExample(t, "site-a", r, nil))) {
			step := obj.GetLabels()["rbd-dr.io/step"]
			if obj.GetKind() != "Job" || step == string(hookcmd.Demote) || step == string(hookcmd.Quiesce) {
				continue
			}
			token, _, _ := unstructured.NestedBool(obj.Object, "spec", "template", "spec", "automountServiceAccountToken")
			if sa, _, _ := unstructured.NestedString(obj.Object, "spec", "template", "spec", "serviceAccountName"); token || sa != "" {
				t.Errorf("%s Job %s: account %q, token %v", r, obj.GetName(), sa, token)
			}
		}
	}
}
