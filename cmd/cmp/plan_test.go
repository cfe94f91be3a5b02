package main

import (
	"bytes"
	"encoding/json"
	"os"
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
	for _, c := range []struct {
		name string
		args []string
	}{
		{"steady", nil},
		{"relocate-to-site-b", []string{"--to", "site-b"}},
		{"forced-failover-to-site-b", []string{"--to", "site-b", "--force"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"plan", example}, c.args...)
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
		"replicapool/csi-vol-mysql is also declared in apps/shop/rbd-dr.yaml: two apps would fail over the same image",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing warning %q in\n%s%s", want, out, stderr)
		}
	}
	if strings.Contains(out, "csi-vol-wordpress is also") {
		t.Error("an image only one app declares was warned about")
	}
}
