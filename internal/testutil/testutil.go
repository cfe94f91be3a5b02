// Package testutil holds what the project's tests share: golden files
// refreshed with -update, and tools that a test skips without on a laptop but
// must have in CI.
package testutil

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files from what the tests produce")

// Update says whether the tests run with -update: for a generated part of a
// file that Golden cannot compare whole.
func Update() bool { return *update }

// Golden compares got with the file at path. With -update it writes the file
// first, so a meant change is one rerun and a reviewed diff.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; create it by rerunning the test with -update (make update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: %s; if the change is meant, rerun the test with -update (make update) and review the diff", path, firstDifference(want, got))
	}
}

// firstDifference names the first line where the file and the output part.
func firstDifference(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if i >= len(w) || i >= len(g) || wl != gl {
			return fmt.Sprintf("line %d is %q in the file, %q in the output", i+1, wl, gl)
		}
	}
	return "they differ"
}

// InCI says whether the tests run in CI (.ci/run exports CI=true), where a
// missing tool or file is a failure, not a reason to skip.
func InCI() bool { return os.Getenv("CI") != "" }

// Tool finds a command on PATH. Without it the test is skipped with how to
// install it, or fails in CI.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if InCI() {
		t.Fatalf("%s is not on PATH in CI: %s", name, install)
	}
	t.Skipf("%s is not on PATH: %s", name, install)
	return ""
}
