package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// commented is a policy file as a person writes it: comments, odd
// indentation, quoting and flow style, which activate must keep.
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
	// The failback runbook: forcePromote back to false on the forced site
	// (once the lost site has resynced), then a planned move.
	if code, _, stderr := runIn(t, ".", nil, "activate", "site-a", dir, "--repo-root", dir); code != 0 {
		t.Fatalf("activate site-a: exit %d: %s", code, stderr)
	}
	cleared := strings.Replace(forced, "forcePromote: true", "forcePromote: false", 1)
	if got := read(); got != cleared {
		t.Errorf("after clearing forcePromote:\n%s", got)
	}
	if code, _, _ := runIn(t, ".", nil, "activate", "site-b", dir, "--repo-root", dir); code != 0 {
		t.Fatal("activate site-b")
	}
	want := strings.Replace(cleared, "activeSite: site-a ", "activeSite: site-b ", 1)
	if got := read(); got != want {
		t.Errorf("after a planned move back:\n%s", got)
	}
}

// After a forced failover the force-promoted site holds the only copy of the
// writes made since: moving the app away in the same step is refused, with
// the runbook, and the file is left as it was.
func TestActivateRefusesFailbackShortcut(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rbd-dr.yaml")
	forced := strings.Replace(commented, "activeSite: site-a          # site-a or site-b\n", "activeSite: site-a          # site-a or site-b\nforcePromote: true\n", 1)
	if err := os.WriteFile(path, []byte(forced), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runIn(t, ".", nil, "activate", "site-b", dir, "--repo-root", dir)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"forcePromote: true", "site-a was force-promoted", "nothing changed", "`argocd-rbd-dr activate site-a` sets forcePromote back to false"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, stderr)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != forced {
		t.Error("the file changed")
	}
	// A second disaster (site-a lost too) may still force the app back.
	if code, _, stderr := runIn(t, ".", nil, "activate", "site-b", dir, "--force", "--repo-root", dir); code != 0 {
		t.Errorf("activate site-b --force: exit %d: %s", code, stderr)
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
