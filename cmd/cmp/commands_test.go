package main

import (
	"bytes"
	"encoding/json"
	corev1 "k8s.io/api/core/v1"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sigs.k8s.io/yaml"
	"slices"
	"strings"
	"testing"

	repoclient "github.com/argoproj/argo-cd/v2/reposerver/apiclient"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
)

const example = "../../examples/wordpress"

var exampleEnv = map[string]string{
	"ARGOCD_ENV_SITE":        "site-b",
	"ARGOCD_APP_NAMESPACE":   "wordpress",
	"ARGOCD_APP_SOURCE_PATH": "examples/wordpress",
}

// generate (as Argo CD runs it) and render (as a person does) print the same.
func TestGenerateEqualsRender(t *testing.T) {
	code, gen, stderr := runIn(t, example, exampleEnv, "generate")
	if code != 0 {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	code, ren, stderr := runIn(t, ".", nil, "render", example, "--site", "site-b")
	if code != 0 {
		t.Fatalf("render: exit %d: %s", code, stderr)
	}
	if gen != ren {
		t.Error("generate and render differ")
	}
	if version != "v0.1.0-dev" {
		t.Fatalf("version %s: render's goldens are made with v0.1.0-dev (goldenVersion in pkg/render); change both", version)
	}
	golden, err := os.ReadFile("../../pkg/render/testdata/wordpress/site-b-passive.golden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if gen != string(golden) {
		t.Error("generate for site-b differs from the site-b passive golden")
	}
}

func TestParamWinsOverPluginEnv(t *testing.T) {
	env := map[string]string{"PARAM_SITE": "site-a", "ARGOCD_ENV_SITE": "site-b", "ARGOCD_APP_SOURCE_PATH": "examples/wordpress"}
	code, out, stderr := runIn(t, example, env, "generate")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "rbd-dr.io/step: promote") {
		t.Error("PARAM_SITE=site-a should render the active site-a")
	}
}

func TestRenderRoleOverride(t *testing.T) {
	code, out, stderr := runIn(t, ".", nil, "render", example, "--site", "site-a", "--role", "passive")
	if code != 0 || !strings.Contains(out, "rbd-dr.io/step: demote") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	code, _, stderr = runIn(t, ".", nil, "render", example, "--site", "site-a", "--role", "primary")
	if code != 1 || !strings.Contains(stderr, `role "primary" is not active or passive`) {
		t.Errorf("exit %d, stderr %s", code, stderr)
	}
}

func TestValidate(t *testing.T) {
	code, out, stderr := runIn(t, ".", nil, "validate", example)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"ok  site-a as active", "ok  site-a as passive", "ok  site-b as active", "ok  site-b as passive"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	// Every problem of the file, one per line, then a summary.
	bad := t.TempDir()
	doc, err := os.ReadFile(filepath.Join(example, "rbd-dr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc = bytes.Replace(doc, []byte("activeSite: site-a"), []byte("activeSite: site-c"), 1)
	doc = bytes.Replace(doc, []byte("size: 20Gi"), []byte("size: big"), 1)
	if err := os.WriteFile(filepath.Join(bad, "rbd-dr.yaml"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runIn(t, ".", nil, "validate", bad)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != 1 || len(lines) != 3 || !strings.Contains(lines[0], "activeSite") || !strings.Contains(lines[1], "volumes[0].size") ||
		!strings.Contains(lines[2], "2 problem(s)") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	// A render problem in one site is reported with the site and role.
	code, _, stderr = runIn(t, ".", nil, "validate", "testdata/errors/kust-helm/repo/app", "--repo-root", "testdata/errors/kust-helm/repo", "--namespace", "shop", "--settings", "testdata/settings.yaml")
	if code != 1 || !strings.Contains(stderr, "site-a as active: site site-a overlay") || !strings.Contains(stderr, "2 of 4 renderings failed") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// The dynamic announcement is what Argo CD's type decodes, with the sites.
func TestParameters(t *testing.T) {
	code, out, stderr := runIn(t, example, exampleEnv, "parameters")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var anns []*repoclient.ParameterAnnouncement
	if err := dec.Decode(&anns); err != nil {
		t.Fatal(err)
	}
	if len(anns) != 2 || anns[0].Name != "active-site" || anns[0].String_ != "site-a" ||
		anns[1].Map["site-a"] != "active" || anns[1].Map["site-b"] != "passive" {
		t.Errorf("announcement: %s", out)
	}
}

func TestVersion(t *testing.T) {
	if code, out, _ := runIn(t, ".", nil, "version"); code != 0 || out != "argocd-rbd-dr "+version+"\n" {
		t.Errorf("exit %d: %q", code, out)
	}
}

// A hook whose arguments are wrong fails with the reason, before touching
// anything; a step that cannot reach its cluster fails with exit code 1.
func TestHookRefuses(t *testing.T) {
	code, _, stderr := runIn(t, ".", nil, "hook", "demote", "--force", "replicapool/img")
	if code != 1 || !strings.Contains(stderr, "unknown flag: --force") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	// The root's flags reach a hook step, before or after its name.
	for _, args := range [][]string{{"--log-level=loud", "hook", "demote"}, {"hook", "demote", "--log-level", "loud"}} {
		code, _, stderr = runIn(t, ".", nil, append(args, "--pools=replicapool", "replicapool/img")...)
		if code != 1 || !strings.Contains(stderr, `--log-level "loud": use debug, info, warn or error`) {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
	}
	code, _, stderr = runIn(t, ".", nil, "hook", "quiesce", "--namespace=shop", "data")
	if code != 1 || !strings.Contains(stderr, "hook quiesce runs inside the cluster") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	// A demote told its claims looks for their pods, and cannot outside a
	// cluster: it stops before any rbd call, with no report.
	code, out, stderr := runIn(t, ".", nil, "hook", "demote", "--pools=replicapool", "--namespace=shop", "--claims=data", "--ceph-conf=/nonexistent/ceph.conf", "replicapool/img")
	if code != 1 || out != "" || !strings.Contains(stderr, "hook demote runs inside the cluster") {
		t.Errorf("exit %d: %s\n%s", code, stderr, out)
	}
	// A target outside the pools this app may move is refused before any
	// step runs: no report is printed.
	code, out, stderr = runIn(t, ".", nil, "hook", "promote", "--pools=replicapool", "--ceph-conf=/nonexistent/ceph.conf", "replicapool/img", "otherpool/img")
	if code != 1 || out != "" || !strings.Contains(stderr, "hook promote: otherpool/img is in pool otherpool, which this app may not move (--pools=replicapool); nothing was done") {
		t.Errorf("exit %d: %s\n%s", code, stderr, out)
	}
	code, _, stderr = runIn(t, ".", nil, "hook", "resync", "--force-promoted", "replicapool/img")
	if code != 1 || !strings.Contains(stderr, "hook resync: give --pools") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	code, out, stderr = runIn(t, ".", nil, "hook", "demote", "--timeout=10s", "--pools=replicapool", "--ceph-conf=/nonexistent/ceph.conf", "replicapool/img")
	if code != 1 || !strings.Contains(stderr, "hook demote: 1 of 1 failed: replicapool/img") || !strings.Contains(out, "TARGET") {
		t.Errorf("exit %d: %s\n%s", code, stderr, out)
	}
	// A step that ran says last how long it took (the hook time of a sync)
	// and whether it failed; one refused before it ran says nothing of it.
	if !regexp.MustCompile(`level=info msg="step finished" result=failed step=demote targets=1 took=[0-9.]+m?s\nargocd-rbd-dr: hook demote: 1 of 1 failed`).MatchString(stderr) {
		t.Errorf("no step-finished line at the end:\n%s", stderr)
	}
	if _, _, stderr := runIn(t, ".", nil, "hook", "promote", "--pools=replicapool", "replicapool/img", "otherpool/img"); strings.Contains(stderr, "step finished") {
		t.Errorf("a refused step says it finished:\n%s", stderr)
	}
}

// A hook Job rendered by another release refuses to run, naming both
// versions, before it touches anything; an unknown flag from that renderer
// is reported as the mismatch it is. The same release runs as before.
func TestHookRefusesAnotherRenderer(t *testing.T) {
	older := map[string]string{hookcmd.RendererVersionEnv: "v0.0.9"}
	args := []string{"hook", "demote", "--pools=replicapool", "--ceph-conf=/nonexistent/ceph.conf", "replicapool/img"}
	want := "this hook binary is argocd-rbd-dr " + version + ", but its Job was rendered by argocd-rbd-dr v0.0.9"
	code, out, stderr := runIn(t, ".", older, args...)
	if code != 1 || out != "" || !strings.Contains(stderr, want) || !strings.Contains(stderr, "nothing was done") {
		t.Errorf("exit %d, stdout %q: %s", code, out, stderr)
	}
	code, _, stderr = runIn(t, ".", older, "hook", "demote", "--pools=replicapool", "--from-the-future", "replicapool/img")
	if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "unknown flag: --from-the-future") {
		t.Errorf("an unknown flag from another renderer: exit %d: %s", code, stderr)
	}
	// The same release goes on to the step (which fails here on the
	// missing cluster, with its report).
	code, out, stderr = runIn(t, ".", map[string]string{hookcmd.RendererVersionEnv: version}, append([]string{"hook", "demote", "--timeout=10s"}, args[2:]...)...)
	if code != 1 || strings.Contains(stderr, "rendered by") || !strings.Contains(out, "TARGET") {
		t.Errorf("the same release: exit %d: %s\n%s", code, stderr, out)
	}
}

// Every container that runs a step is told the renderer's version.
func TestRenderTellsTheHooksItsVersion(t *testing.T) {
	for _, site := range []string{"site-a", "site-b"} {
		code, out, stderr := runIn(t, ".", nil, "render", example, "--site", site)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		steps, told := 0, 0
		for _, doc := range strings.Split(out, "\n---\n") {
			var obj struct {
				Kind string
				Spec struct {
					Template    struct{ Spec corev1.PodSpec }
					JobTemplate struct {
						Spec struct{ Template struct{ Spec corev1.PodSpec } }
					}
				}
			}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatal(err)
			}
			pod := obj.Spec.Template.Spec
			if obj.Kind == "CronJob" {
				pod = obj.Spec.JobTemplate.Spec.Template.Spec
			}
			for _, c := range pod.Containers {
				if len(c.Command) < 2 || c.Command[1] != "hook" {
					continue
				}
				steps++
				if slices.Contains(c.Env, corev1.EnvVar{Name: hookcmd.RendererVersionEnv, Value: version}) {
					told++
				}
			}
		}
		if steps < 2 || told != steps {
			t.Errorf("%s: %d step containers, %d told the version", site, steps, told)
		}
	}
}

func TestJSONErrors(t *testing.T) {
	code, _, stderr := runIn(t, ".", map[string]string{"ARGOCD_RBD_DR_LOG_FORMAT": "json"}, "render", example, "--site", "x")
	var line map[string]string
	if err := json.Unmarshal([]byte(stderr), &line); err != nil || code != 1 || line["level"] != "error" || !strings.Contains(line["msg"], `site "x"`) {
		t.Errorf("exit %d, stderr %q (%v)", code, stderr, err)
	}
}

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("#!/bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "bin")
	if err := copyFile(src, dest); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dest)
	if err != nil || st.Mode().Perm() != 0o755 || st.Size() != 12 {
		t.Errorf("copied file: %v %v", st, err)
	}
}

// The shipped binary stays out of Argo CD's and gitops-engine's packages
// (the start-up budget in docs/architecture.md): they are the referee in tests
// only. Of client-go it links the dynamic client the quiesce step uses and
// what that client needs, and the kubeconfig loader (clientcmd) adopt
// connects with, nothing more (no typed clientset), as that budget says.
func TestBinaryDependencies(t *testing.T) {
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	dynamic := map[string]bool{}
	for _, p := range append(deps("k8s.io/client-go/dynamic"), deps("k8s.io/client-go/tools/clientcmd")...) {
		dynamic[p] = true
	}
	for _, p := range deps(".") {
		switch {
		case strings.HasPrefix(p, "github.com/argoproj/"):
			t.Errorf("argocd-rbd-dr links %s", p)
		case strings.HasPrefix(p, "k8s.io/client-go/") && !dynamic[p]:
			t.Errorf("argocd-rbd-dr links %s, which neither client-go's dynamic client nor its kubeconfig loader needs", p)
		}
	}
}

// Force and ForcePromoted reach the steps only from the command line that
// rbd-dr.yaml rendered: promote without --force must never force.
func TestStepOptions(t *testing.T) {
	for _, args := range [][]string{{"promote", "--pools=p", "p/i"}, {"promote", "--pools=p", "--force", "p/i"}, {"resync", "--pools=p", "--force-promoted", "p/i"}, {"demote", "--pools=p", "--timeout=3m", "--parallelism=7", "p/i"}} {
		r, err := hookcmd.Parse(args[0], args[1:])
		if err != nil {
			t.Fatal(err)
		}
		o := stepOptions(r)
		if o.Force != r.Force || o.ForcePromoted != r.ForcePromoted || o.Timeout != r.Timeout || o.Parallelism != r.Parallelism || o.Log == nil {
			t.Errorf("%v: options %+v from %+v", args, o, r)
		}
	}
	if r, _ := hookcmd.Parse("promote", []string{"--pools=p", "p/i"}); stepOptions(r).Force {
		t.Error("promote without --force runs with Force")
	}
}
