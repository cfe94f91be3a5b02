package repofs_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/repofs"
)

// tree is a repository "repo" beside a folder "repo-x" whose name starts
// like it (a prefix check without the separator would let it in), with
// links from the repository out to it and to a device.
func tree(t *testing.T) (*repofs.FS, string) {
	t.Helper()
	top := t.TempDir()
	root, outside := filepath.Join(top, "repo"), filepath.Join(top, "repo-x")
	for dir, files := range map[string][]string{root: {"in.yaml", "sub/ok.yaml"}, outside: {"secret.yaml", "sub/s.yaml"}} {
		for _, f := range files {
			path := filepath.Join(dir, f)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte("kind: x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for link, target := range map[string]string{
		"file-out": "../repo-x/secret.yaml", "dir-out": "../repo-x", "dev": "/dev/zero", "file-in": "sub/ok.yaml", "dir-in": "sub",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := repofs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return fs, root
}

// Every method refuses a path that leaves the repository, by .. or by a
// link, and serves the same kinds of path inside it: a method that read the
// disk directly would fail here.
func TestEveryMethodStaysInside(t *testing.T) {
	fs, root := tree(t)
	in := func(p string) string { return filepath.Join(root, p) }
	outs := []string{in("file-out"), in("../repo-x/secret.yaml"), in("dir-out/secret.yaml"), in("dev")}
	outDirs := []string{in("dir-out"), in("../repo-x"), in("dir-out/sub")}

	for _, p := range outs {
		if f, err := fs.Open(p); err == nil || !strings.Contains(err.Error(), "outside the repository") {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%s): %v", p, err)
		}
		if _, err := fs.ReadFile(p); err == nil {
			t.Errorf("ReadFile(%s) read it", p)
		}
		if _, err := fs.ReadFileLimited(p, 1<<20); err == nil {
			t.Errorf("ReadFileLimited(%s) read it", p)
		}
		if fs.Exists(p) {
			t.Errorf("Exists(%s)", p)
		}
	}
	for _, p := range outDirs {
		if fs.IsDir(p) {
			t.Errorf("IsDir(%s)", p)
		}
		if _, err := fs.ReadDir(p); err == nil {
			t.Errorf("ReadDir(%s) listed it", p)
		}
		if _, _, err := fs.CleanedAbs(p); err == nil {
			t.Errorf("CleanedAbs(%s) accepted it", p)
		}
		if err := fs.Walk(p, func(string, os.FileInfo, error) error { return nil }); err == nil {
			t.Errorf("Walk(%s) walked it", p)
		}
		if m, err := fs.Glob(filepath.Join(p, "*")); err != nil || len(m) != 0 {
			t.Errorf("Glob(%s/*) = %v, %v", p, m, err)
		}
	}

	// Inside, the same calls work, links included.
	for _, p := range []string{in("in.yaml"), in("file-in"), in("dir-in/ok.yaml")} {
		f, err := fs.Open(p)
		if err != nil {
			t.Errorf("Open(%s): %v", p, err)
		} else {
			f.Close()
		}
		if b, err := fs.ReadFile(p); err != nil || string(b) != "kind: x\n" {
			t.Errorf("ReadFile(%s) = %q, %v", p, b, err)
		}
		if b, err := fs.ReadFileLimited(p, 1<<20); err != nil || string(b) != "kind: x\n" {
			t.Errorf("ReadFileLimited(%s) = %q, %v", p, b, err)
		}
		if !fs.Exists(p) {
			t.Errorf("Exists(%s) = false", p)
		}
	}
	for _, p := range []string{root, in("sub"), in("dir-in")} {
		if !fs.IsDir(p) {
			t.Errorf("IsDir(%s) = false", p)
		}
		if names, err := fs.ReadDir(p); err != nil || len(names) == 0 {
			t.Errorf("ReadDir(%s) = %v, %v", p, names, err)
		}
		if _, _, err := fs.CleanedAbs(p); err != nil {
			t.Errorf("CleanedAbs(%s): %v", p, err)
		}
		if err := fs.Walk(p, func(string, os.FileInfo, error) error { return nil }); err != nil {
			t.Errorf("Walk(%s): %v", p, err)
		}
	}
	// Glob keeps the matches inside and drops the links out.
	m, err := fs.Glob(in("*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range m {
		if b := filepath.Base(got); b == "file-out" || b == "dir-out" || b == "dev" {
			t.Errorf("Glob kept %s", got)
		}
	}
	if len(m) != 4 { // in.yaml, sub, file-in, dir-in
		t.Errorf("Glob(*) = %v, want the four entries inside", m)
	}
}

func TestReadOnly(t *testing.T) {
	fs, root := tree(t)
	p := filepath.Join(root, "new.yaml")
	if _, err := fs.Create(p); err == nil {
		t.Error("Create worked")
	}
	for name, err := range map[string]error{
		"WriteFile": fs.WriteFile(p, nil), "Mkdir": fs.Mkdir(p), "MkdirAll": fs.MkdirAll(p), "RemoveAll": fs.RemoveAll(filepath.Join(root, "sub")),
	} {
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "sub", "ok.yaml")); err != nil {
		t.Errorf("the tree changed: %v", err)
	}
}

// A file that is not a regular one (a FIFO would block its reader) or that
// is larger than the limit is refused, without reading it all.
func TestReadFileLimited(t *testing.T) {
	fs, root := tree(t)
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadFileLimited(fifo, 10); err == nil || !strings.Contains(err.Error(), "fifo: not a regular file") {
		t.Errorf("a FIFO: %v", err)
	}
	if _, err := fs.ReadFileLimited(filepath.Join(root, "in.yaml"), 3); err == nil || !strings.Contains(err.Error(), "in.yaml: larger than 3 bytes") {
		t.Errorf("a file over the limit: %v", err)
	}
}
