// Package repofs is the read-only view of one repository that everything
// read from an app's git goes through: kustomize's files and rbd-dr.yaml. No
// ../ and no symlink leaves it.
package repofs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// ErrOutside is the error for a path that, links resolved, leaves the
// repository.
var ErrOutside = errors.New("outside the repository")

// FS is a read-only view of the disk below one folder: every path, symlinks
// resolved, must stay below it, so neither a ../ nor a symlink can reach a
// file outside the repository the cmp-server unpacked.
type FS struct {
	disk filesys.FileSystem
	root string // absolute, symlinks resolved
	// resolved caches evalExisting by absolute path: kustomize asks about the
	// same few folders and files many times, and the repository does not
	// change while it renders.
	resolved map[string]string
}

var _ filesys.FileSystem = (*FS)(nil)

// New opens the folder root as a read-only view.
func New(root string) (*FS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	return &FS{disk: filesys.MakeFsOnDisk(), root: resolved, resolved: map[string]string{}}, nil
}

// Inside resolves path (symlinks included, as far as it exists) and says
// whether it stays below the root.
func (j *FS) Inside(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	resolved, err := j.evalExisting(abs)
	if err != nil {
		return "", err
	}
	if resolved != j.root && !strings.HasPrefix(resolved, j.root+string(filepath.Separator)) {
		return "", fmt.Errorf("%s: %w", j.Rel(abs), ErrOutside)
	}
	return resolved, nil
}

// evalExisting resolves the symlinks of the longest existing prefix of abs,
// so that a missing file is judged by the folder it would be in.
func (j *FS) evalExisting(abs string) (string, error) {
	if r, ok := j.resolved[abs]; ok {
		return r, nil
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, os.ErrNotExist) {
		parent := filepath.Dir(abs)
		if parent == abs {
			return abs, nil
		}
		var dir string
		if dir, err = j.evalExisting(parent); err == nil {
			resolved = filepath.Join(dir, filepath.Base(abs))
		}
	}
	if err != nil {
		return "", err
	}
	j.resolved[abs] = resolved
	return resolved, nil
}

// Rel shows a path relative to the repository, for messages.
func (j *FS) Rel(path string) string {
	if r, err := filepath.Rel(j.root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

func readOnly(path string) error {
	return fmt.Errorf("%s: the repository is read-only", path)
}

func (j *FS) Create(path string) (filesys.File, error) { return nil, readOnly(path) }
func (j *FS) Mkdir(path string) error                  { return readOnly(path) }
func (j *FS) MkdirAll(path string) error               { return readOnly(path) }
func (j *FS) RemoveAll(path string) error              { return readOnly(path) }
func (j *FS) WriteFile(path string, _ []byte) error    { return readOnly(path) }

func (j *FS) Open(path string) (filesys.File, error) {
	p, err := j.Inside(path)
	if err != nil {
		return nil, err
	}
	return j.disk.Open(p)
}

func (j *FS) IsDir(path string) bool {
	p, err := j.Inside(path)
	return err == nil && j.disk.IsDir(p)
}

func (j *FS) Exists(path string) bool {
	p, err := j.Inside(path)
	return err == nil && j.disk.Exists(p)
}

func (j *FS) ReadDir(path string) ([]string, error) {
	p, err := j.Inside(path)
	if err != nil {
		return nil, err
	}
	return j.disk.ReadDir(p)
}

func (j *FS) ReadFile(path string) ([]byte, error) {
	p, err := j.Inside(path)
	if err != nil {
		return nil, err
	}
	return j.disk.ReadFile(p)
}

func (j *FS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	if _, err := j.Inside(path); err != nil {
		return "", "", err
	}
	return j.disk.CleanedAbs(path)
}

// Glob keeps only the matches inside the repository.
func (j *FS) Glob(pattern string) ([]string, error) {
	matches, err := j.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	kept := matches[:0]
	for _, m := range matches {
		if _, err := j.Inside(m); err == nil {
			kept = append(kept, m)
		}
	}
	return kept, nil
}

func (j *FS) Walk(path string, walkFn filepath.WalkFunc) error {
	if _, err := j.Inside(path); err != nil {
		return err
	}
	return j.disk.Walk(path, walkFn)
}

// ReadFileLimited reads a regular file of at most limit bytes: a policy file
// is a page of YAML, and a link to a device or a huge file must not hang the
// reader or fill its memory.
func (j *FS) ReadFileLimited(path string, limit int64) ([]byte, error) {
	p, err := j.Inside(path)
	if err != nil {
		return nil, err
	}
	// Stat before opening: opening a FIFO would wait for a writer.
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", j.Rel(p))
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", j.Rel(p), limit)
	}
	return data, nil
}
