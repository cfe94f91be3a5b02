// Package cmpserver_test runs Argo CD's own cmp-server in-process with
// plugin/plugin.yaml and the argocd-rbd-dr binary on PATH, and drives it the
// way Argo CD's repo-server does: discovery through
// util/app/discovery.DetectConfigManagementPlugin, the repository sent with
// util/cmp.SendRepoStream, manifests and parameters over the plugin's gRPC API.
package cmpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/cmpserver"
	pluginclient "github.com/argoproj/argo-cd/v2/cmpserver/apiclient"
	"github.com/argoproj/argo-cd/v2/cmpserver/plugin"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	repoclient "github.com/argoproj/argo-cd/v2/reposerver/apiclient"
	"github.com/argoproj/argo-cd/v2/util/app/discovery"
	"github.com/argoproj/argo-cd/v2/util/cmp"
	"github.com/argoproj/gitops-engine/pkg/sync/hook"
	"github.com/argoproj/gitops-engine/pkg/sync/syncwaves"
	grpc_retry "github.com/grpc-ecosystem/go-grpc-middleware/retry"
	log "github.com/sirupsen/logrus"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/cmpenv"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

const (
	appPathInRepo = "examples/wordpress"
	namespace     = "wordpress"
	repoURL       = "https://git.example.com/rbd-dr/apps.git"
	revision      = "0123456789abcdef0123456789abcdef01234567"
	stepLabel     = "rbd-dr.io/step"
	siteLabel     = "rbd-dr.io/site"
)

// Set by TestMain.
var (
	moduleRoot string
	pluginCfg  *plugin.PluginConfig
	address    string // the cmp-server's unix socket
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if err := findModuleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "cmpserver test:", err)
		return 1
	}
	// Short paths: a unix socket path must fit in 108 bytes.
	tmp, err := os.MkdirTemp("", "cmp")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmpserver test:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	stop, err := setUp(tmp)
	if stop != nil {
		defer stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmpserver test:", err)
		return 1
	}
	return m.Run()
}

// projectModule is the module whose root holds plugin/, examples/ and cmd/cmp.
const projectModule = "github.com/rbd-dr/argocd-rbd-dr"

// findModuleRoot walks up from the working folder to the project's go.mod, so
// the same test runs from the project module and from the Argo CD v3 module
// nested below it (test/cmpserver/v3).
func findModuleRoot() error {
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	for {
		if body, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(body) == projectModule {
			moduleRoot = dir
			return nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return fmt.Errorf("no go.mod of %s above the working folder", projectModule)
		}
		dir = parent
	}
}

// modulePath is the path on a go.mod's module line.
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// setUp builds the binary, puts it on PATH, points Argo CD's cmp-server
// variables at temp dirs, loads plugin.yaml and serves the cmp-server.
func setUp(tmp string) (stop func(), err error) {
	binDir := filepath.Join(tmp, "bin")
	sockDir := filepath.Join(tmp, "sock")
	workDir := filepath.Join(tmp, "work")
	for _, d := range []string{binDir, sockDir, workDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}

	build := exec.Command("go", "build", "-o", filepath.Join(binDir, cmpenv.Binary), "./cmd/cmp")
	build.Dir = moduleRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building %s: %w", cmpenv.Binary, err)
	}
	for k, v := range map[string]string{
		// The sidecar's environment, which the cmp-server hands on to the
		// plugin: the platform's settings, as manifests/ mounts them.
		config.SettingsEnv:          filepath.Join(moduleRoot, "examples", "rbd-dr-settings.yaml"),
		"PATH":                      binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"ARGOCD_PLUGINSOCKFILEPATH": sockDir,
		"ARGOCD_CMP_WORKDIR":        workDir,
	} {
		if err := os.Setenv(k, v); err != nil {
			return nil, err
		}
	}
	// The cmp-server and the discovery code log every call, and the expected
	// failures below at error level; the tests report what matters. Set
	// CMPSERVER_LOG_LEVEL=info to see the server's own log.
	log.SetLevel(log.FatalLevel)
	if lvl, err := log.ParseLevel(os.Getenv("CMPSERVER_LOG_LEVEL")); err == nil {
		log.SetLevel(lvl)
	}

	cfgDir, err := pluginConfigDir(tmp)
	if err != nil {
		return nil, err
	}
	pluginCfg, err = plugin.ReadPluginConfig(cfgDir)
	if err != nil {
		return nil, fmt.Errorf("Argo CD rejects %s/plugin.yaml: %w", cfgDir, err)
	}

	srv, err := cmpserver.NewServer(plugin.CMPServerInitConstants{PluginConfig: *pluginCfg})
	if err != nil {
		return nil, err
	}
	grpcServer, err := srv.CreateGRPC()
	if err != nil {
		return nil, err
	}
	address = pluginCfg.Address()
	lis, err := net.Listen("unix", address)
	if err != nil {
		return nil, err
	}
	served := make(chan error, 1)
	go func() { served <- grpcServer.Serve(lis) }()
	return func() {
		done := make(chan struct{})
		go func() { grpcServer.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			grpcServer.Stop()
		}
		if err := <-served; err != nil {
			fmt.Fprintln(os.Stderr, "cmpserver test: serve:", err)
		}
	}, nil
}

// pluginConfigDir is the folder holding the plugin.yaml to load: the repo's
// plugin/ folder, or (outside CI, while that file does not exist yet) one
// generated from pkg/cmpenv.
func pluginConfigDir(tmp string) (string, error) {
	dir := filepath.Join(moduleRoot, "plugin")
	if _, err := os.Stat(filepath.Join(dir, "plugin.yaml")); err == nil {
		return dir, nil
	}
	if testutil.InCI() {
		return "", fmt.Errorf("%s/plugin.yaml is missing; generate it with: go test ./plugin -update", dir)
	}
	fmt.Fprintln(os.Stderr, "cmpserver test: plugin/plugin.yaml is missing; using one generated from pkg/cmpenv")
	body, err := cmpenv.PluginConfigYAML()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(tmp, "plugin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "plugin.yaml"), body, 0o600)
}

// newRepo copies examples/wordpress into a fresh repository at the same
// path and returns the repository root.
func newRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dst := filepath.Join(root, filepath.FromSlash(appPathInRepo))
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(moduleRoot, filepath.FromSlash(appPathInRepo)))); err != nil {
		t.Fatal(err)
	}
	return root
}

// editPolicy replaces old with new in the repository's rbd-dr.yaml.
func editPolicy(t *testing.T, repo, old, new string) {
	t.Helper()
	file := filepath.Join(repo, filepath.FromSlash(appPathInRepo), "rbd-dr.yaml")
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), old) {
		t.Fatalf("%s has no %q", file, old)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(body), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// siteBy says how an Application names its site.
type siteBy int

const (
	byEnv   siteBy = iota // spec.source.plugin.env SITE
	byParam               // spec.source.plugin.parameters site
)

func (b siteBy) String() string { return [...]string{"plugin env SITE", "parameter site"}[b] }

func sourcePlugin(site string, by siteBy) *v1alpha1.ApplicationSourcePlugin {
	p := &v1alpha1.ApplicationSourcePlugin{}
	if site == "" {
		return p
	}
	switch by {
	case byEnv:
		p.Env = v1alpha1.Env{{Name: "SITE", Value: site}}
	case byParam:
		p.Parameters = v1alpha1.ApplicationSourcePluginParameters{{Name: "site", String_: &site}}
	}
	return p
}

// generateEnv is what the repo-server's newEnv and getPluginEnvs give a
// GenerateManifest call for an Application named app.
func generateEnv(t *testing.T, app string, p *v1alpha1.ApplicationSourcePlugin) []string {
	t.Helper()
	env := (&v1alpha1.Env{
		{Name: "ARGOCD_APP_NAME", Value: app},
		{Name: "ARGOCD_APP_NAMESPACE", Value: namespace},
		{Name: "ARGOCD_APP_REVISION", Value: revision},
		{Name: "ARGOCD_APP_REVISION_SHORT", Value: revision[:7]},
		{Name: "ARGOCD_APP_REVISION_SHORT_8", Value: revision[:8]},
		{Name: "ARGOCD_APP_SOURCE_REPO_URL", Value: repoURL},
		{Name: "ARGOCD_APP_SOURCE_PATH", Value: appPathInRepo},
		{Name: "ARGOCD_APP_SOURCE_TARGET_REVISION", Value: "HEAD"},
	}).Environ()
	env = append(env, "KUBE_VERSION=1.31.0", "KUBE_API_VERSIONS=v1,apps/v1,batch/v1")
	return pluginParamEnvs(t, env, p)
}

// detailsEnv is what the repo-server's populatePluginAppDetails gives a
// GetParametersAnnouncement call.
func detailsEnv(t *testing.T, app string, p *v1alpha1.ApplicationSourcePlugin) []string {
	t.Helper()
	return pluginParamEnvs(t, []string{
		"ARGOCD_APP_NAME=" + app,
		"ARGOCD_APP_SOURCE_REPO_URL=" + repoURL,
		"ARGOCD_APP_SOURCE_PATH=" + appPathInRepo,
		"ARGOCD_APP_SOURCE_TARGET_REVISION=HEAD",
	}, p)
}

// pluginParamEnvs is the repo-server's getPluginParamEnvs.
func pluginParamEnvs(t *testing.T, env []string, p *v1alpha1.ApplicationSourcePlugin) []string {
	t.Helper()
	parsed := make(v1alpha1.Env, len(env))
	for i, v := range env {
		e, err := v1alpha1.NewEnvEntry(v)
		if err != nil {
			t.Fatal(err)
		}
		parsed[i] = e
	}
	if p == nil {
		return env
	}
	for _, e := range p.Env {
		env = append(env, fmt.Sprintf("ARGOCD_ENV_%s=%s", e.Name, parsed.Envsubst(e.Value)))
	}
	params, err := p.Parameters.Environ()
	if err != nil {
		t.Fatal(err)
	}
	return append(env, params...)
}

func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// client dials the cmp-server as the repo-server does once a plugin is found.
func client(t *testing.T) pluginclient.ConfigManagementPluginServiceClient {
	t.Helper()
	conn, c, err := pluginclient.NewConfigManagementPluginClientSet(address).NewConfigManagementPluginClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return c
}

// generate is the repo-server's generateManifestsCMP.
func generate(t *testing.T, repo string, env []string) (*pluginclient.ManifestResponse, error) {
	t.Helper()
	stream, err := client(t).GenerateManifest(callCtx(t), grpc_retry.Disable())
	if err != nil {
		t.Fatal(err)
	}
	appPath := filepath.Join(repo, filepath.FromSlash(appPathInRepo))
	if err := cmp.SendRepoStream(stream.Context(), appPath, repo, stream, env, nil); err != nil {
		t.Fatalf("sending the repository: %v", err)
	}
	return stream.CloseAndRecv()
}

// announce is the repo-server's populatePluginAppDetails after discovery.
func announce(t *testing.T, repo string, env []string) (*pluginclient.ParametersAnnouncementResponse, error) {
	t.Helper()
	stream, err := client(t).GetParametersAnnouncement(callCtx(t), grpc_retry.Disable())
	if err != nil {
		t.Fatal(err)
	}
	appPath := filepath.Join(repo, filepath.FromSlash(appPathInRepo))
	if err := cmp.SendRepoStream(stream.Context(), appPath, repo, stream, env, nil); err != nil {
		t.Fatalf("sending the repository: %v", err)
	}
	return stream.CloseAndRecv()
}

func decode(t *testing.T, manifests []string) []*unstructured.Unstructured {
	t.Helper()
	objs := make([]*unstructured.Unstructured, 0, len(manifests))
	for i, m := range manifests {
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON([]byte(m)); err != nil {
			t.Fatalf("manifest %d does not decode: %v\n%s", i, err, m)
		}
		objs = append(objs, obj)
	}
	return objs
}

func TestPluginConfig(t *testing.T) {
	if pluginCfg.Metadata.Name != cmpenv.PluginName {
		t.Errorf("plugin name %q, want %q", pluginCfg.Metadata.Name, cmpenv.PluginName)
	}
	if got := filepath.Base(address); got != cmpenv.PluginName+".sock" {
		t.Errorf("socket %q, want %s.sock: Applications name the plugin %q", got, cmpenv.PluginName, cmpenv.PluginName)
	}
	if pluginCfg.Spec.Discover.FileName != "rbd-dr.yaml" {
		t.Errorf("discover.fileName %q, want rbd-dr.yaml", pluginCfg.Spec.Discover.FileName)
	}
}

func TestDiscovery(t *testing.T) {
	repo := newRepo(t)
	// Another repository: a plain kustomize app, no rbd-dr.yaml.
	other := t.TempDir()
	plain := filepath.Join(other, "apps", "plain")
	if err := os.MkdirAll(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plain, "kustomization.yaml"), []byte("resources: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name       string
		repo, path string
		pluginName string
		want       bool
	}{
		{"app folder with rbd-dr.yaml", repo, appPathInRepo, "", true},
		{"app folder, plugin named", repo, appPathInRepo, cmpenv.PluginName, true},
		{"its base without rbd-dr.yaml", repo, appPathInRepo + "/base", "", false},
		{"an overlay without rbd-dr.yaml", repo, appPathInRepo + "/overlays/site-a", "", false},
		{"a kustomize-only repository", other, "apps/plain", "", false},
		{"a kustomize-only repository, plugin named", other, "apps/plain", cmpenv.PluginName, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			appPath := filepath.Join(c.repo, filepath.FromSlash(c.path))
			env := generateEnv(t, "wordpress-site-a", sourcePlugin("site-a", byEnv))
			conn, cl, err := discovery.DetectConfigManagementPlugin(callCtx(t), appPath, c.repo, c.pluginName, env, nil)
			if conn != nil {
				defer conn.Close()
			}
			got := err == nil && cl != nil
			if got != c.want {
				t.Fatalf("discovery of %s: supported=%v (err %v), want %v", c.path, got, err, c.want)
			}
			if !c.want && (err == nil || !strings.Contains(err.Error(), "plugin")) {
				t.Errorf("expected Argo CD's no-plugin error, got %v", err)
			}
		})
	}
}

// rendered is what one site's Application gets.
type rendered struct {
	steps       []string       // the hook Jobs' steps, in wave order
	replicas    map[string]int // Deployment name -> spec.replicas
	siteLabels  map[string]bool
	objectCount int
}

func render(t *testing.T, repo, site string, by siteBy) rendered {
	t.Helper()
	env := generateEnv(t, "wordpress-"+site, sourcePlugin(site, by))
	appPath := filepath.Join(repo, filepath.FromSlash(appPathInRepo))
	// Argo CD first finds the plugin, then generates with it.
	conn, _, err := discovery.DetectConfigManagementPlugin(callCtx(t), appPath, repo, "", env, nil)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conn.Close()
	resp, err := generate(t, repo, env)
	if err != nil {
		t.Fatalf("generate for %s (%s): %v", site, by, err)
	}
	objs := decode(t, resp.GetManifests())
	r := rendered{replicas: map[string]int{}, siteLabels: map[string]bool{}, objectCount: len(objs)}
	type job struct {
		step string
		wave int
	}
	var jobs []job
	for _, obj := range objs {
		switch obj.GetKind() {
		case "Job":
			step := obj.GetLabels()[stepLabel]
			if step == "" {
				t.Errorf("Job %s has no %s label", obj.GetName(), stepLabel)
			}
			if !hook.IsHook(obj) {
				t.Errorf("Job %s (%s) is not an Argo CD hook", obj.GetName(), step)
			}
			jobs = append(jobs, job{step, syncwaves.Wave(obj)})
		case "Deployment":
			n, found, err := unstructured.NestedInt64(obj.Object, "spec", "replicas")
			if err != nil || !found {
				t.Errorf("Deployment %s: spec.replicas missing (%v)", obj.GetName(), err)
			}
			r.replicas[obj.GetName()] = int(n)
			r.siteLabels[obj.GetLabels()[siteLabel]] = true
		}
	}
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].wave < jobs[j].wave })
	for i, j := range jobs {
		if i > 0 && jobs[i-1].wave == j.wave {
			t.Errorf("hook Jobs %s and %s share wave %d", jobs[i-1].step, j.step, j.wave)
		}
		r.steps = append(r.steps, j.step)
	}
	return r
}

func checkRole(t *testing.T, r rendered, site string, active bool) {
	t.Helper()
	activeSteps, passiveSteps := []string{"promote"}, []string{"quiesce", "demote"}
	wantSteps, otherSteps, wantReplicas, role := passiveSteps, activeSteps, 0, "passive"
	if active {
		wantSteps, otherSteps, wantReplicas, role = activeSteps, passiveSteps, 1, "active"
	}
	// The role's steps, in this order (others may come between), and none
	// of the other role's.
	i := 0
	for _, s := range r.steps {
		if i < len(wantSteps) && s == wantSteps[i] {
			i++
		}
		if slices.Contains(otherSteps, s) {
			t.Errorf("%s as %s: has a %s hook Job (steps in wave order: %v)", site, role, s, r.steps)
		}
	}
	if i != len(wantSteps) {
		t.Errorf("%s as %s: hook Job steps in wave order %v, want %v among them in that order", site, role, r.steps, wantSteps)
	}
	if len(r.replicas) == 0 {
		t.Errorf("%s as %s: no Deployments rendered (%d objects)", site, role, r.objectCount)
	}
	for name, n := range r.replicas {
		if n != wantReplicas {
			t.Errorf("%s as %s: Deployment %s has replicas %d, want %d", site, role, name, n, wantReplicas)
		}
	}
	if len(r.siteLabels) != 1 || !r.siteLabels[site] {
		t.Errorf("%s: Deployments carry %s labels %v, want only the %s overlay's", site, siteLabel, r.siteLabels, site)
	}
}

func TestGenerateFollowsActiveSite(t *testing.T) {
	repo := newRepo(t)
	cases := []struct {
		site string
		by   siteBy
	}{
		{"site-a", byEnv},
		{"site-b", byParam},
		{"site-a", byParam},
		{"site-b", byEnv},
	}
	for _, phase := range []struct {
		active string
		edit   func(t *testing.T)
	}{
		{"site-a", func(*testing.T) {}},
		{"site-b", func(t *testing.T) { editPolicy(t, repo, "activeSite: site-a", "activeSite: site-b") }},
	} {
		t.Run("activeSite="+phase.active, func(t *testing.T) {
			phase.edit(t)
			for _, c := range cases {
				t.Run(c.site+" by "+c.by.String(), func(t *testing.T) {
					checkRole(t, render(t, repo, c.site, c.by), c.site, c.site == phase.active)
				})
			}
		})
	}
}

// The parameter wins over plugin env, as the design says.
func TestParameterWinsOverPluginEnv(t *testing.T) {
	repo := newRepo(t)
	p := sourcePlugin("site-a", byEnv)
	b := "site-b"
	p.Parameters = v1alpha1.ApplicationSourcePluginParameters{{Name: "site", String_: &b}}
	resp, err := generate(t, repo, generateEnv(t, "wordpress-site-b", p))
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range decode(t, resp.GetManifests()) {
		if obj.GetKind() == "Deployment" {
			if got := obj.GetLabels()[siteLabel]; got != "site-b" {
				t.Errorf("Deployment %s rendered for %q, want site-b (parameter over env)", obj.GetName(), got)
			}
		}
	}
}

func TestParametersAnnouncement(t *testing.T) {
	repo := newRepo(t)
	for _, active := range []string{"site-a", "site-b"} {
		t.Run("activeSite="+active, func(t *testing.T) {
			if active != "site-a" {
				editPolicy(t, repo, "activeSite: site-a", "activeSite: "+active)
			}
			resp, err := announce(t, repo, detailsEnv(t, "wordpress-site-a", sourcePlugin("site-a", byEnv)))
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]*repoclient.ParameterAnnouncement{}
			for _, a := range resp.GetParameterAnnouncements() {
				if _, dup := byName[a.Name]; dup {
					t.Errorf("parameter %q announced twice", a.Name)
				}
				byName[a.Name] = a
			}
			if s := byName["site"]; s == nil {
				t.Errorf("static parameter site missing: %v", resp.GetParameterAnnouncements())
			} else if s.CollectionType != "string" || s.Title == "" {
				t.Errorf("static parameter site: %+v", s)
			}
			if a := byName["active-site"]; a == nil {
				t.Errorf("dynamic parameter active-site missing")
			} else if a.String_ != active {
				t.Errorf("active-site = %q, want %q", a.String_, active)
			}
			roles := byName["site-roles"]
			if roles == nil {
				t.Fatalf("dynamic parameter site-roles missing")
			}
			if roles.CollectionType != "map" {
				t.Errorf("site-roles collectionType %q, want map", roles.CollectionType)
			}
			want := map[string]string{"site-a": "passive", "site-b": "passive"}
			want[active] = "active"
			if fmt.Sprint(roles.Map) != fmt.Sprint(want) {
				t.Errorf("site-roles = %v, want %v", roles.Map, want)
			}
		})
	}
}

func TestBadConfigReachesArgoCD(t *testing.T) {
	cases := []struct {
		name      string
		old, new  string // the edit to rbd-dr.yaml
		plugin    *v1alpha1.ApplicationSourcePlugin
		wantInMsg []string
		announce  bool // the parameters call fails too
	}{
		{
			name: "activeSite not a site", old: "activeSite: site-a", new: "activeSite: site-c",
			plugin:    sourcePlugin("site-a", byEnv),
			wantInMsg: []string{"rbd-dr.yaml", "activeSite", "site-c"},
			announce:  true,
		},
		{
			name: "unknown field", old: "forcePromote: false", new: "forcePromote: false\nfailoverMode: fast",
			plugin:    sourcePlugin("site-b", byParam),
			wantInMsg: []string{"rbd-dr.yaml", "failoverMode", "unknown field"},
			announce:  true,
		},
		{
			name: "unknown field in a site", old: "  - name: site-b\n", new: "  - name: site-b\n    region: eu-west\n",
			plugin:    sourcePlugin("site-a", byEnv),
			wantInMsg: []string{"rbd-dr.yaml", "region", "unknown field"},
			announce:  true,
		},
		{
			name:      "no site named",
			plugin:    sourcePlugin("", byEnv),
			wantInMsg: []string{"SITE", "rbd-dr.yaml"},
		},
		{
			name:      "site not in rbd-dr.yaml",
			plugin:    sourcePlugin("site-z", byParam),
			wantInMsg: []string{"site-z"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := newRepo(t)
			if c.old != "" {
				editPolicy(t, repo, c.old, c.new)
			}
			resp, err := generate(t, repo, generateEnv(t, "wordpress", c.plugin))
			if err == nil {
				t.Fatalf("generate succeeded with %d manifests, want an error", len(resp.GetManifests()))
			}
			if n := len(resp.GetManifests()); n != 0 {
				t.Errorf("generate returned %d manifests with its error", n)
			}
			msg := status.Convert(err).Message()
			for _, w := range c.wantInMsg {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not name %q:\n%s", w, msg)
				}
			}
			t.Logf("generate error as Argo CD sees it: %s", msg)

			if !c.announce {
				return
			}
			ann, err := announce(t, repo, detailsEnv(t, "wordpress", c.plugin))
			if err == nil {
				t.Fatalf("parameters announcement succeeded (%v), want an error", ann.GetParameterAnnouncements())
			}
			msg = status.Convert(err).Message()
			for _, w := range c.wantInMsg {
				if !strings.Contains(msg, w) {
					t.Errorf("announcement error does not name %q:\n%s", w, msg)
				}
			}
		})
	}
}

// The parent app-of-apps (MODE=apps): one Application per site, Argo CD's
// own type decodes each strictly, and the passive site's wave comes first,
// flipping when activeSite is edited.
func TestAppOfApps(t *testing.T) {
	repo := newRepo(t)
	parent := &v1alpha1.ApplicationSourcePlugin{Env: v1alpha1.Env{{Name: "MODE", Value: "apps"}}}
	for _, active := range []string{"site-a", "site-b"} {
		t.Run("activeSite="+active, func(t *testing.T) {
			if active != "site-a" {
				editPolicy(t, repo, "activeSite: site-a", "activeSite: "+active)
			}
			resp, err := generate(t, repo, generateEnv(t, "wordpress", parent))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetManifests()) != 2 {
				t.Fatalf("%d manifests, want one Application per site", len(resp.GetManifests()))
			}
			waves := map[string]int{}
			for _, m := range resp.GetManifests() {
				dec := json.NewDecoder(strings.NewReader(m))
				dec.DisallowUnknownFields()
				var app v1alpha1.Application
				if err := dec.Decode(&app); err != nil {
					t.Fatalf("not an Argo CD Application: %v\n%s", err, m)
				}
				src := app.Spec.GetSource()
				site := src.Plugin.Env[0].Value
				if app.Name != "wordpress-"+site || src.RepoURL != repoURL || src.Path != appPathInRepo || src.Plugin.Name != "rbd-dr" ||
					app.Spec.Destination.Server != "https://"+site+".example.com:6443" {
					t.Errorf("Application %s: %+v", app.Name, app.Spec)
				}
				u := &unstructured.Unstructured{}
				if err := u.UnmarshalJSON([]byte(m)); err != nil {
					t.Fatal(err)
				}
				waves[site] = syncwaves.Wave(u)
			}
			passive := map[string]string{"site-a": "site-b", "site-b": "site-a"}[active]
			if waves[passive] >= waves[active] {
				t.Errorf("waves %v: the passive %s must sync before the active %s", waves, passive, active)
			}
		})
	}
}
