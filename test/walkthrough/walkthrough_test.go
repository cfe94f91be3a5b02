// Package walkthrough runs the README's walk-through, line by line, on a
// copy of the repository, as a new user would after cloning it.
package walkthrough

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// commands are the lines of the README's walk-through block.
func commands(t *testing.T, readme string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "<!-- walkthrough:begin -->")
	block, _, ok2 := strings.Cut(rest, "<!-- walkthrough:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no walkthrough block")
	}
	var cmds []string
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "```") {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

func TestREADMEWalkthrough(t *testing.T) {
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := commands(t, string(readme))
	if len(cmds) < 5 {
		t.Fatalf("the walk-through has %d commands", len(cmds))
	}

	// A fresh copy of what git tracks, as a clone would have it.
	clone := t.TempDir()
	files, err := exec.Command("git", "-C", root, "ls-files", "--cached").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(strings.TrimSpace(string(files)), "\n") {
		src := filepath.Join(root, f)
		info, err := os.Lstat(src)
		if err != nil || info.IsDir() {
			continue // deleted in the work tree, or a submodule
		}
		dest := filepath.Join(clone, f)
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			t.Fatal(err)
		}
		if info.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, dest); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dest, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "clone"}} {
		if out, err := exec.Command("git", append([]string{"-C", clone}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}

	outputs := map[string]string{}
	for _, c := range cmds {
		cmd := exec.Command("bash", "-c", c)
		cmd.Dir = clone
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
		outputs[c] = string(out)
		t.Logf("$ %s: %d bytes of output", c, len(out))
	}
	for c, out := range outputs {
		switch {
		case strings.Contains(c, "plan examples/wordpress --to site-b"):
			if !strings.Contains(out, "planned relocation from site-a to site-b") {
				t.Errorf("%s:\n%s", c, out)
			}
		case strings.Contains(c, "plan examples/wordpress --settings"):
			// After activate, plan reads the edit against the last commit.
			if !strings.Contains(out, "planned relocation from site-a to site-b") || !strings.Contains(out, "against: the last commit") {
				t.Errorf("plan after activate should show the move the next sync makes:\n%s", out)
			}
		case strings.Contains(c, "--apps"):
			if strings.Count(out, "kind: Application") != 2 {
				t.Errorf("%s:\n%s", c, out)
			}
		case strings.HasPrefix(c, "git diff"):
			if !strings.Contains(out, "examples/wordpress/rbd-dr.yaml | 2 +-") {
				t.Errorf("activate should change one line of rbd-dr.yaml:\n%s", out)
			}
		}
	}
}
