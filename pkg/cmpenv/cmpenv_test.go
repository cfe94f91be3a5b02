package cmpenv_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/cmpenv"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestVariableNames(t *testing.T) {
	for _, c := range []struct{ name, param, env, plugin string }{
		{"site", "PARAM_SITE", "SITE", "ARGOCD_ENV_SITE"},
		{"repo-url.x", "PARAM_REPO_URL_X", "REPO_URL_X", "ARGOCD_ENV_REPO_URL_X"},
	} {
		p := cmpenv.Parameter{Name: c.name}
		if p.ParamEnv() != c.param || p.Env() != c.env || p.PluginEnv() != c.plugin {
			t.Errorf("%s: %s %s %s, want %s %s %s", c.name, p.ParamEnv(), p.Env(), p.PluginEnv(), c.param, c.env, c.plugin)
		}
	}
}

func TestRead(t *testing.T) {
	e := cmpenv.Read(env(map[string]string{
		"PARAM_SITE": "site-a", "ARGOCD_ENV_SITE": "site-b", "ARGOCD_ENV_MODE": "apps",
		"ARGOCD_APP_NAMESPACE": "shop", "ARGOCD_APP_SOURCE_PATH": "apps/shop",
		"ARGOCD_APP_SOURCE_REPO_URL": "https://git.example.com/r.git", "ARGOCD_APP_SOURCE_TARGET_REVISION": "main",
	}))
	want := cmpenv.Env{Site: "site-a", Mode: "apps", Namespace: "shop", SourcePath: "apps/shop", RepoURL: "https://git.example.com/r.git", TargetRevision: "main"}
	if e != want {
		t.Errorf("Read = %+v, want %+v (the parameter wins over plugin env)", e, want)
	}
	if e := cmpenv.Read(env(map[string]string{"ARGOCD_ENV_SITE": "site-b"})); e.Site != "site-b" || e.Mode != cmpenv.ModeSite {
		t.Errorf("plugin env alone: %+v, want site-b in mode site", e)
	}
}

func TestRepoRoot(t *testing.T) {
	app := filepath.FromSlash("/tmp/repo/apps/shop")
	for _, c := range []struct{ path, root, err string }{
		{"", app, ""},
		{".", app, ""},
		{"apps/shop", filepath.FromSlash("/tmp/repo"), ""},
		{"/apps/shop/", filepath.FromSlash("/tmp/repo"), ""},
		{"shop", filepath.FromSlash("/tmp/repo/apps"), ""},
		{"../shop", "", `ARGOCD_APP_SOURCE_PATH "../shop" leaves the repository`},
		{"apps/blog", "", `does not end in ARGOCD_APP_SOURCE_PATH "apps/blog"`},
	} {
		root, err := cmpenv.Env{SourcePath: c.path}.RepoRoot(app)
		switch {
		case c.err == "" && (err != nil || root != c.root):
			t.Errorf("%q: %q, %v; want %q", c.path, root, err, c.root)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.path, err, c.err)
		}
	}
}

func TestStaticAnnouncementsAreTheTable(t *testing.T) {
	anns := cmpenv.StaticAnnouncements()
	if len(anns) != len(cmpenv.Parameters) {
		t.Fatalf("%d announcements for %d parameters", len(anns), len(cmpenv.Parameters))
	}
	for i, p := range cmpenv.Parameters {
		if a := anns[i]; a.Name != p.Name || a.Title != p.Title || a.Tooltip != p.Tooltip || a.ItemType != "string" {
			t.Errorf("announcement %d = %+v for %+v", i, a, p)
		}
	}
}

// The reference's table of what Argo CD passes (docs/reference.md) is
// generated from the same table as plugin/plugin.yaml; -update rewrites it
// between its markers.
func TestReferenceTable(t *testing.T) {
	const begin, end = "<!-- cmpenv:begin -->\n", "<!-- cmpenv:end -->"
	path := filepath.Join("..", "..", "docs", "reference.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(data), begin)
	got, after, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("docs/reference.md has no %q ... %q block", strings.TrimSpace(begin), end)
	}
	want := cmpenv.EnvTable()
	if testutil.Update() && got != want {
		if err := os.WriteFile(path, []byte(before+begin+want+end+after), 0o644); err != nil {
			t.Fatal(err)
		}
		got = want
	}
	if got != want {
		t.Errorf("docs/reference.md's table drifted from pkg/cmpenv; run: go test ./pkg/cmpenv -update (make update)\n--- docs/reference.md\n%s--- table\n%s", got, want)
	}
}
