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

const commented = `# WordPress failover policy.
apiVersion: rbd-dr.io/v1alpha1
kind: FailoverPolicy

# Change this line to fail over.
activeSite: site-a          # site-a or site-b
sites:
    -   name: site-a        # odd indentation on purpose
        overlay: "overlays/site-a"
    -   name: site-b
        overlay: 'overlays/site-b'
volumes:
  - {pvc: data, pool: replicapool, image: img1, size: 1Gi}   # flow style
`

// activate changes the one value and keeps every other byte.
func TestActivateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rbd-dr.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	write(commented)
	if code, _, stderr := runIn(t, ".", nil, "activate", "site-b", dir, "--repo-root", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got, want := read(), strings.Replace(commented, "activeSite: site-a ", "activeSite: site-b ", 1); got != want {
		t.Errorf("after activate site-b:\n%s\nwant\n%s", got, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}

	// A forced failover adds forcePromote under activeSite; a later planned
	// move sets it back to false.
	if code, _, stderr := runIn(t, ".", nil, "activate", "site-a", dir, "--force", "--repo-root", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	forced := strings.Replace(commented, "activeSite: site-a          # site-a or site-b\n", "activeSite: site-a          # site-a or site-b\nforcePromote: true\n", 1)
	if got := read(); got != forced {
		t.Errorf("after activate --force:\n%s", got)
	}
	if code, _, _ := runIn(t, ".", nil, "activate", "site-b", dir, "--repo-root", dir); code != 0 {
		t.Fatal("activate site-b")
	}
	want := strings.Replace(strings.Replace(forced, "forcePromote: true", "forcePromote: false", 1), "activeSite: site-a ", "activeSite: site-b ", 1)
	if got := read(); got != want {
		t.Errorf("after a planned move back:\n%s", got)
	}
}

func TestActivateRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rbd-dr.yaml")
	if err := os.WriteFile(path, []byte(commented), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runIn(t, ".", nil, "activate", "site-c", dir, "--repo-root", dir)
	if code != 1 || out != "" || !strings.Contains(stderr, `"site-c" is not one of the sites in rbd-dr.yaml (site-a, site-b); nothing changed`) {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(path); string(b) != commented {
		t.Error("the file changed")
	}
	broken := strings.Replace(commented, "size: 1Gi", "size: lots", 1)
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runIn(t, ".", nil, "activate", "site-b", dir, "--repo-root", dir)
	if code != 1 || !strings.Contains(stderr, "is not valid as it is; fix it first") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(path); string(b) != broken {
		t.Error("the file changed")
	}
}
