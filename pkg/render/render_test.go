package render_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/argoproj/gitops-engine/pkg/sync/common"
	"github.com/argoproj/gitops-engine/pkg/sync/hook"
	"github.com/argoproj/gitops-engine/pkg/sync/syncwaves"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// renderExample renders examples/wordpress for a site, as role ("" = as git says).
// goldenVersion is the renderer version the goldens are rendered with: the
// binary's own when built without -ldflags (cmd/cmp's version), so that
// generate prints the golden byte for byte.
const goldenVersion = "v0.1.0-dev"

func renderExample(t testing.TB, site string, role render.Role, edit func(*config.Policy)) *render.Result {
	t.Helper()
	return renderExampleWith(t, site, role, edit, exampleSettings(t))
}

// renderExampleWith is renderExample with the platform's settings given.
func renderExampleWith(t testing.TB, site string, role render.Role, edit func(*config.Policy), settings *config.Settings) *render.Result {
	t.Helper()
	root := repoRoot(t)
	app := filepath.Join(root, "examples", "wordpress")
	p, err := config.Load(app, root)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(p)
	}
	res, err := render.Render(p, render.Options{RepoRoot: root, AppDir: app, Site: site, Role: role, Namespace: "wordpress", Settings: settings, Version: goldenVersion})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func toYAML(t testing.TB, res *render.Result) []byte {
	t.Helper()
	out, err := res.YAML()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// objects splits the output into unstructured objects.
func objects(t testing.TB, out []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(out), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("decoding %q: %v", doc, err)
		}
		objs = append(objs, u)
	}
	return objs
}

var cases = []struct {
	site string
	role render.Role
}{
	{"site-a", render.Active}, {"site-a", render.Passive}, {"site-b", render.Active}, {"site-b", render.Passive},
}

func TestGoldenWordPress(t *testing.T) {
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s", c.site, c.role), func(t *testing.T) {
			got := toYAML(t, renderExample(t, c.site, c.role, nil))
			testutil.Golden(t, filepath.Join("testdata", "wordpress", fmt.Sprintf("%s-%s.golden.yaml", c.site, c.role)), got)
		})
	}
}

// The second example: a StatefulSet whose claims come from its templates
// (one volume per replica) and a CronJob that writes to a claim of its own.
// The passive renderings stop both; the goldens show how.
func TestGoldenInventory(t *testing.T) {
	root := repoRoot(t)
	app := filepath.Join(root, "examples", "inventory")
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s", c.site, c.role), func(t *testing.T) {
			p, err := config.Load(app, root)
			if err != nil {
				t.Fatal(err)
			}
			res, err := render.Render(p, render.Options{RepoRoot: root, AppDir: app, Site: c.site, Role: c.role, Settings: exampleSettings(t), Version: goldenVersion})
			if err != nil {
				t.Fatal(err)
			}
			got := toYAML(t, res)
			testutil.Golden(t, filepath.Join("testdata", "inventory", fmt.Sprintf("%s-%s.golden.yaml", c.site, c.role)), got)
			stopped := bytes.Contains(got, []byte("  replicas: 0\n")) && bytes.Contains(got, []byte("  suspend: true\n"))
			if stopped != (c.role == render.Passive) {
				t.Errorf("%s: the StatefulSet at 0 and the CronJob suspended: %t", c.role, stopped)
			}
		})
	}
}

func TestRoleFollowsActiveSite(t *testing.T) {
	if r := renderExample(t, "site-a", "", nil); r.Role != render.Active {
		t.Errorf("site-a is activeSite but rendered %s", r.Role)
	}
	if r := renderExample(t, "site-b", "", nil); r.Role != render.Passive {
		t.Errorf("site-b rendered %s", r.Role)
	}
	flip := func(p *config.Policy) { p.ActiveSite = "site-b" }
	if r := renderExample(t, "site-b", "", flip); r.Role != render.Active {
		t.Errorf("after the flip site-b rendered %s", r.Role)
	}
}

// Every object decodes into its k8s.io/api type with unknown fields refused.
func TestObjectsDecodeStrictly(t *testing.T) {
	types := map[string]func() any{
		"Secret": func() any { return &corev1.Secret{} }, "Service": func() any { return &corev1.Service{} },
		"PersistentVolumeClaim": func() any { return &corev1.PersistentVolumeClaim{} },
		"PersistentVolume":      func() any { return &corev1.PersistentVolume{} },
		"ServiceAccount":        func() any { return &corev1.ServiceAccount{} },
		"Deployment":            func() any { return &appsv1.Deployment{} },
		"Ingress":               func() any { return &networkingv1.Ingress{} },
		"Job":                   func() any { return &batchv1.Job{} },
		"CronJob":               func() any { return &batchv1.CronJob{} },
		"Role":                  func() any { return &rbacv1.Role{} },
		"RoleBinding":           func() any { return &rbacv1.RoleBinding{} },
	}
	force := func(p *config.Policy) { p.ForcePromote = true }
	for _, c := range cases {
		out := toYAML(t, renderExample(t, c.site, c.role, force))
		for _, doc := range strings.Split(string(out), "\n---\n") {
			var meta struct{ Kind string }
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatal(err)
			}
			newObj, ok := types[meta.Kind]
			if !ok {
				t.Fatalf("no k8s.io/api type listed for kind %q", meta.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), newObj()); err != nil {
				t.Errorf("%s/%s %s: %v", c.site, c.role, meta.Kind, err)
			}
		}
	}
}

type hookStep struct {
	wave  int
	kind  string
	step  string
	force bool
}

// readHooks reads the hooks back the way Argo CD does, with gitops-engine.
func readHooks(t *testing.T, out []byte) []hookStep {
	t.Helper()
	var steps []hookStep
	for _, obj := range objects(t, out) {
		if !hook.IsHook(obj) {
			continue
		}
		if types := hook.Types(obj); !slices.Equal(types, []common.HookType{common.HookTypePreSync}) {
			t.Errorf("%s %s: hook types %v, want PreSync only", obj.GetKind(), obj.GetName(), types)
		}
		s := hookStep{wave: syncwaves.Wave(obj), kind: obj.GetKind(), step: obj.GetLabels()["rbd-dr.io/step"]}
		if obj.GetKind() == "Job" {
			var job batchv1.Job
			if err := yaml.Unmarshal(mustJSON(t, obj), &job); err != nil {
				t.Fatal(err)
			}
			c := job.Spec.Template.Spec.Containers[0]
			s.force = slices.Contains(c.Args, "--force")
			// The command line the Job runs must parse as the hook contract.
			if got := c.Command[len(c.Command)-1]; got != s.step {
				t.Errorf("Job %s runs step %q, labelled %q", job.Name, got, s.step)
			}
			if _, err := hookcmd.Parse(s.step, c.Args); err != nil {
				t.Errorf("Job %s: its arguments do not parse: %v", job.Name, err)
			}
		}
		steps = append(steps, s)
	}
	slices.SortStableFunc(steps, func(a, b hookStep) int { return a.wave - b.wave })
	return steps
}

func mustJSON(t *testing.T, obj *unstructured.Unstructured) []byte {
	b, err := obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The role table of docs/architecture.md, read back with Argo CD's own hook
// and wave functions.
func TestHookWavesPerRole(t *testing.T) {
	// the steps' access in quiesce's wave: Argo CD applies it kind by kind
	// before the wave's Job
	rbac := []hookStep{{1, "ServiceAccount", "quiesce", false}, {1, "Role", "quiesce", false}, {1, "RoleBinding", "quiesce", false},
		{1, "ServiceAccount", "demote", false}, {1, "Role", "demote", false}, {1, "RoleBinding", "demote", false}}
	cases := []struct {
		name  string
		role  render.Role
		force bool
		want  []hookStep
	}{
		{"active", render.Active, false, []hookStep{{2, "Job", "promote", false}}},
		{"active forced", render.Active, true, []hookStep{{2, "Job", "promote", true}}},
		{"passive", render.Passive, false, append(slices.Clone(rbac), hookStep{1, "Job", "quiesce", false}, hookStep{2, "Job", "demote", false})},
		{"passive after forced failover", render.Passive, true, append(slices.Clone(rbac),
			hookStep{1, "Job", "quiesce", false}, hookStep{2, "Job", "demote", false}, hookStep{3, "Job", "resync", false})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := renderExample(t, "site-b", c.role, func(p *config.Policy) { p.ForcePromote = c.force })
			got := readHooks(t, toYAML(t, res))
			if !slices.Equal(got, c.want) {
				t.Errorf("hooks\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

// Nothing but an explicit forcePromote: true ever puts --force on a command line.
func TestNoForceWithoutForcePromote(t *testing.T) {
	for _, c := range cases {
		out := toYAML(t, renderExample(t, c.site, c.role, nil))
		if bytes.Contains(out, []byte("--force")) {
			t.Errorf("%s as %s: --force rendered while forcePromote is false", c.site, c.role)
		}
	}
}

func TestHookJobsAreDeterministicAndShort(t *testing.T) {
	a := toYAML(t, renderExample(t, "site-b", render.Passive, nil))
	b := toYAML(t, renderExample(t, "site-b", render.Passive, nil))
	if !bytes.Equal(a, b) {
		t.Error("two renderings differ")
	}
	long := func(p *config.Policy) { p.Name = strings.Repeat("x", 40) }
	for _, obj := range objects(t, toYAML(t, renderExample(t, "site-b", render.Passive, long))) {
		if len(obj.GetName()) > 63 {
			t.Errorf("%s name %q is %d characters", obj.GetKind(), obj.GetName(), len(obj.GetName()))
		}
		if obj.GetKind() == "Job" {
			var job batchv1.Job
			if err := yaml.Unmarshal(mustJSON(t, obj), &job); err != nil {
				t.Fatal(err)
			}
			if *job.Spec.BackoffLimit != config.DefaultBackoffLimit || *job.Spec.ActiveDeadlineSeconds != config.DefaultDeadline {
				t.Errorf("Job %s: backoffLimit/activeDeadlineSeconds not from the config", job.Name)
			}
			if obj.GetAnnotations()["argocd.argoproj.io/hook-delete-policy"] != "BeforeHookCreation" {
				t.Errorf("Job %s: no BeforeHookCreation", job.Name)
			}
		}
	}
}

// The app part of the active site is what the kustomize binary prints, but
// for the two fields that bind each PVC to its static PV.
func TestAppPartEqualsKustomizeBinary(t *testing.T) {
	bin := testutil.Tool(t, "kustomize", "make tools (go install sigs.k8s.io/kustomize/kustomize/v5@v5.4.2)")
	for _, site := range []string{"site-a", "site-b"} {
		t.Run(site, func(t *testing.T) {
			res := renderExample(t, site, render.Active, nil)
			ours, err := res.App.AsYaml()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "build", filepath.Join(repoRoot(t), "examples", "wordpress", "overlays", site))
			theirs, err := cmd.Output()
			if err != nil {
				t.Fatalf("kustomize build: %v", err)
			}
			got, want := unbind(t, ours), unbind(t, theirs)
			if got != want {
				t.Errorf("app part differs from kustomize build:\n--- ours\n%s\n--- kustomize\n%s", got, want)
			}
			if bytes.Equal(ours, theirs) {
				t.Error("no PVC was bound: the comparison proves nothing")
			}
		})
	}
}

// unbind drops spec.volumeName and spec.storageClassName from PVCs.
func unbind(t *testing.T, out []byte) string {
	t.Helper()
	var docs []string
	for _, doc := range strings.Split(string(out), "\n---\n") {
		n, err := kyaml.Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		if n.GetKind() == "PersistentVolumeClaim" {
			for _, f := range []string{"volumeName", "storageClassName"} {
				if err := n.PipeE(kyaml.Lookup("spec"), kyaml.Clear(f)); err != nil {
					t.Fatal(err)
				}
			}
		}
		docs = append(docs, n.MustString())
	}
	return strings.Join(docs, "---\n")
}
