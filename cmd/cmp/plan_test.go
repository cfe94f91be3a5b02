package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
)

func golden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", "plan", name), []byte(got))
}

// The plan of each change, as a table and as JSON: the steady state, a
// planned relocation and a forced failover.
func TestPlanGoldens(t *testing.T) {
	// The goldens plan the file as it is: no commit (its id would change
	// with every commit of this repository) to plan against.
	t.Setenv("GIT_DIR", t.TempDir())
	for _, c := range []struct {
		name, dir string
		args      []string
	}{
		{"steady", example, nil},
		{"relocate-to-site-b", example, []string{"--to", "site-b"}},
		{"forced-failover-to-site-b", example, []string{"--to", "site-b", "--force"}},
		// The second example: a StatefulSet's template claims, a CronJob.
		{"inventory-relocate-to-site-b", "../../examples/inventory", []string{"--to", "site-b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"plan", c.dir}, c.args...)
			code, out, stderr := runIn(t, ".", nil, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden(t, c.name+".txt", out)
			code, js, stderr := runIn(t, ".", nil, append(args, "-o", "json")...)
			if code != 0 || !json.Valid([]byte(js)) {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden(t, c.name+".json", js)
		})
	}
}

func TestPlanForcedWarnsAndForces(t *testing.T) {
	_, out, _ := runIn(t, ".", nil, "plan", example, "--to", "site-b", "--force")
	if !strings.Contains(out, "promote --force") || !strings.Contains(out, "forcePromote is true") || !strings.Contains(out, "forced failover from site-a to site-b") {
		t.Errorf("forced plan:\n%s", out)
	}
	if !strings.Contains(out, "site-a  passive  0         3          resync") {
		t.Errorf("the returning site must resync after a forced failover:\n%s", out)
	}
	code, _, stderr := runIn(t, ".", nil, "plan", example, "--force")
	if code != 1 || !strings.Contains(stderr, "give the site to fail over to with --to") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// Two apps beside each other that declare one image, and a site with no
// cluster URL: both are warned about.
func TestPlanWarnings(t *testing.T) {
	root := t.TempDir()
	for _, app := range []string{"shop", "blog"} {
		dir := filepath.Join(root, "apps", app)
		if err := os.CopyFS(dir, os.DirFS(example)); err != nil {
			t.Fatal(err)
		}
	}
	blog := filepath.Join(root, "apps", "blog", "rbd-dr.yaml")
	doc, err := os.ReadFile(blog)
	if err != nil {
		t.Fatal(err)
	}
	doc = bytes.Replace(doc, []byte("image: csi-vol-wordpress"), []byte("image: csi-vol-blog"), 1)
	if err := os.WriteFile(blog, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	_, out, stderr := runIn(t, ".", nil, "plan", filepath.Join(root, "apps", "blog"), "--repo-root", root, "--namespace", "wordpress")
	for _, want := range []string{
		"replicapool/wordpress/csi-vol-mysql is also declared in apps/shop/rbd-dr.yaml: two apps would fail over the same image",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing warning %q in\n%s%s", want, out, stderr)
		}
	}
	if strings.Contains(out, "csi-vol-wordpress is also") {
		t.Error("an image only one app declares was warned about")
	}
	if strings.Contains(out, "is also declared in apps/shop/rbd-dr.yaml, in the same namespace") {
		t.Error("claims of one name in two namespaces were warned about")
	}
}

// After activate, plan compares the edited file with the last commit, which
// is what the clusters run: the move the next sync makes, not "none".
func TestPlanAgainstLastCommit(t *testing.T) {
	testutil.Tool(t, "git", "apt-get install git")
	root := t.TempDir()
	app := filepath.Join(root, "apps", "blog")
	if err := os.CopyFS(app, os.DirFS(example)); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", root, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "blog on site-a")
	plan := func() string {
		t.Helper()
		code, out, stderr := runIn(t, ".", nil, "plan", app, "--namespace", "wordpress")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		return out
	}
	if out := plan(); !strings.Contains(out, "change: none: site-a stays active") || !strings.Contains(out, "against: the last commit (") {
		t.Errorf("before the edit:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"site-b", app}, "change: planned relocation from site-a to site-b"},
		{[]string{"site-b", app, "--force"}, "change: forced failover from site-a to site-b"},
	} {
		if code, _, stderr := runIn(t, ".", nil, append([]string{"activate"}, c.args...)...); code != 0 {
			t.Fatalf("activate %v: exit %d: %s", c.args, code, stderr)
		}
		if out := plan(); !strings.Contains(out, c.want) {
			t.Errorf("after activate %v (not committed), want %q:\n%s", c.args, c.want, out)
		}
	}
	// Committed, the forced failover is what the clusters run; clearing the
	// flag on the same site is the next change.
	git("commit", "-q", "-am", "forced failover to site-b")
	if code, _, stderr := runIn(t, ".", nil, "activate", "site-b", app); code != 0 {
		t.Fatalf("activate site-b: exit %d: %s", code, stderr)
	}
	if out := plan(); !strings.Contains(out, "change: forcePromote back to false: site-b stays active") {
		t.Errorf("after clearing forcePromote:\n%s", out)
	}
}
