package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const testVersion = "v0.0.0-imagetest"

// buildBinary builds ./cmd/cmp the way make build does, into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	out := filepath.Join(t.TempDir(), "argocd-rbd-dr")
	cmd := exec.Command(goBin, "build", "-trimpath",
		"-ldflags", "-s -w -X main.version="+testVersion, "-o", out, "./cmd/cmp")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cmp: %v\n%s", err, b)
	}
	return out
}

type file struct {
	hdr  *tar.Header
	body []byte
}

func TestImage(t *testing.T) {
	binPath := buildBinary(t)
	pluginPath := filepath.Join("..", "..", "plugin", "plugin.yaml")
	dir := t.TempDir()
	o := options{
		Binary:  binPath,
		Plugin:  pluginPath,
		Out:     filepath.Join(dir, "image.tar"),
		Version: testVersion,
	}
	res, err := build(o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Tag.String(), "ghcr.io/rbd-dr/argocd-rbd-dr:"+testVersion; got != want {
		t.Errorf("tag %s, want %s", got, want)
	}

	img, err := tarball.ImageFromPath(o.Out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := img.Digest(); err != nil || d != res.Digest {
		t.Errorf("digest of the written tarball %v (%v), build reported %v", d, err, res.Digest)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/usr/local/bin/argocd-rbd-dr" {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if len(c.Cmd) != 0 {
		t.Errorf("cmd %q, want none", c.Cmd)
	}
	if c.User != "999:999" {
		t.Errorf("user %q, want 999:999", c.User)
	}
	// Nothing runs as root: neither the user nor the group part may be root or empty.
	for _, part := range strings.SplitN(c.User, ":", 2) {
		if part == "" || part == "0" || part == "root" {
			t.Errorf("user %q runs as root", c.User)
		}
	}
	if c.WorkingDir != "/home/argocd" {
		t.Errorf("working dir %q", c.WorkingDir)
	}
	if !contains(c.Env, "PATH=/usr/local/bin") {
		t.Errorf("env %q lacks PATH=/usr/local/bin", c.Env)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version": testVersion,
		"org.opencontainers.image.title":   "argocd-rbd-dr",
		"org.opencontainers.image.source":  sourceURL,
	} {
		if got := c.Labels[k]; got != want {
			t.Errorf("label %s=%q, want %q", k, got, want)
		}
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	files := readLayer(t, layers[0])

	wantBin, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := mustFile(t, files, "usr/local/bin/argocd-rbd-dr", tar.TypeReg, 0o755, 0)
	if !bytes.Equal(bin.body, wantBin) {
		t.Errorf("the binary in the image (%d bytes) differs from the one built (%d bytes)", len(bin.body), len(wantBin))
	}
	ef, err := elf.NewFile(bytes.NewReader(bin.body))
	if err != nil {
		t.Fatalf("the binary in the image is not ELF: %v", err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary in the image is dynamically linked (PT_INTERP); the image has no libc")
		}
	}

	wantPlugin, err := os.ReadFile(pluginPath)
	if err != nil {
		t.Fatal(err)
	}
	plugin := mustFile(t, files, "home/argocd/cmp-server/config/plugin.yaml", tar.TypeReg, 0o644, 0)
	if !bytes.Equal(plugin.body, wantPlugin) {
		t.Errorf("plugin.yaml in the image differs from plugin/plugin.yaml")
	}
	mustFile(t, files, "tmp/", tar.TypeDir, 0o1777, 0)
	mustFile(t, files, "home/argocd/", tar.TypeDir, 0o755, 999)
	mustFile(t, files, "home/argocd/cmp-server/", tar.TypeDir, 0o755, 999)
	if p := mustFile(t, files, "etc/passwd", tar.TypeReg, 0o644, 0); !strings.Contains(string(p.body), "argocd:x:999:999:") {
		t.Errorf("/etc/passwd lacks the argocd user:\n%s", p.body)
	}
	for name, f := range files {
		if !f.hdr.ModTime.Equal(cf.Created.Time) {
			t.Errorf("%s: mtime %v, want the fixed %v", name, f.hdr.ModTime, cf.Created.Time)
		}
	}

	// The binary in the image is the one that runs: it answers with its version.
	run := filepath.Join(dir, "from-image")
	if err := os.WriteFile(run, bin.body, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(run, "version").Output(); err != nil || string(out) != "argocd-rbd-dr "+testVersion+"\n" {
		t.Errorf("argocd-rbd-dr version from the image: %q, %v", out, err)
	}

	// Reproducible: the same inputs give the same digest and the same tarball.
	o2 := o
	o2.Out = filepath.Join(dir, "again.tar")
	res2, err := build(o2)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Digest != res.Digest || res2.Config != res.Config {
		t.Errorf("second build: digest %v id %v, first %v %v", res2.Digest, res2.Config, res.Digest, res.Config)
	}
	a, _ := os.ReadFile(o.Out)
	b, _ := os.ReadFile(o2.Out)
	if !bytes.Equal(a, b) {
		t.Errorf("two builds from the same inputs wrote different tarballs")
	}
	// ...and a different input a different one.
	o3 := o
	o3.Out = filepath.Join(dir, "other.tar")
	o3.Epoch = 1700000000
	if res3, err := build(o3); err != nil || res3.Digest == res.Digest {
		t.Errorf("a build at another SOURCE_DATE_EPOCH: %v, %v; want a different digest than %v", res3.Digest, err, res.Digest)
	}
}

func TestBuildRefusesADynamicBinary(t *testing.T) {
	dir := t.TempDir()
	// A file that is not ELF at all is refused...
	notELF := filepath.Join(dir, "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := build(options{Binary: notELF, Plugin: filepath.Join("..", "..", "plugin", "plugin.yaml"),
		Out: filepath.Join(dir, "x.tar"), Version: testVersion})
	if err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("build with a shell script: %v, want a not-ELF error", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "x.tar")); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("a failed build left a tarball: %v", statErr)
	}
	// ...and so is a dynamically linked one, such as the system's own tools.
	for _, dyn := range []string{"/bin/sh", "/bin/ls", "/usr/bin/env"} {
		if f, err := elf.Open(dyn); err == nil {
			interp := false
			for _, p := range f.Progs {
				interp = interp || p.Type == elf.PT_INTERP
			}
			f.Close()
			if !interp {
				continue
			}
			_, err := build(options{Binary: dyn, Plugin: filepath.Join("..", "..", "plugin", "plugin.yaml"),
				Out: filepath.Join(dir, "y.tar"), Version: testVersion})
			if err == nil || !strings.Contains(err.Error(), "dynamically linked") {
				t.Errorf("build with %s: %v, want a dynamically-linked error", dyn, err)
			}
			return
		}
	}
	t.Log("no dynamically linked system binary found; only the not-ELF case ran")
}

func TestDefaultTag(t *testing.T) {
	for in, want := range map[string]string{
		"v0.1.0":                  "ghcr.io/rbd-dr/argocd-rbd-dr:v0.1.0",
		"v0.1.0-3-gabc1234-dirty": "ghcr.io/rbd-dr/argocd-rbd-dr:v0.1.0-3-gabc1234-dirty",
		"v1.0.0+build.5":          "ghcr.io/rbd-dr/argocd-rbd-dr:v1.0.0-build.5",
		"abc1234":                 "ghcr.io/rbd-dr/argocd-rbd-dr:abc1234",
	} {
		if got := defaultTag(in); got != want {
			t.Errorf("defaultTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func readLayer(t *testing.T, l interface {
	Uncompressed() (io.ReadCloser, error)
}) map[string]file {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := files[h.Name]; dup {
			t.Errorf("%s twice in the layer", h.Name)
		}
		files[h.Name] = file{hdr: h, body: body}
	}
	return files
}

func mustFile(t *testing.T, files map[string]file, name string, typ byte, mode int64, owner int) file {
	t.Helper()
	f, ok := files[name]
	if !ok {
		t.Errorf("/%s missing from the image", name)
		return file{hdr: &tar.Header{}}
	}
	if f.hdr.Typeflag != typ {
		t.Errorf("/%s: type %q, want %q", name, f.hdr.Typeflag, typ)
	}
	if f.hdr.Mode&0o7777 != mode {
		t.Errorf("/%s: mode %#o, want %#o", name, f.hdr.Mode&0o7777, mode)
	}
	if f.hdr.Uid != owner || f.hdr.Gid != owner {
		t.Errorf("/%s: owner %d:%d, want %d:%d", name, f.hdr.Uid, f.hdr.Gid, owner, owner)
	}
	return f
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
