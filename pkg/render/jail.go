package render

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// jail is a read-only view of the disk below one folder. kustomize reads
// everything through it, so neither a ../ nor a symlink can reach a file
// outside the repository the cmp-server unpacked.
type jail struct {
	disk filesys.FileSystem
	root string // absolute, symlinks resolved
	// resolved caches evalExisting by absolute path: kustomize asks about the
	// same few folders and files many times, and the repository does not
	// change while it renders.
	resolved map[string]string
}

var _ filesys.FileSystem = (*jail)(nil)

// newJail opens the folder root as a jail.
func newJail(root string) (*jail, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	return &jail{disk: filesys.MakeFsOnDisk(), root: resolved, resolved: map[string]string{}}, nil
}

// inside resolves path (symlinks included, as far as it exists) and says
// whether it stays below the root.
func (j *jail) inside(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	resolved, err := j.evalExisting(abs)
	if err != nil {
		return "", err
	}
	if resolved != j.root && !strings.HasPrefix(resolved, j.root+string(filepath.Separator)) {
		return "", fmt.Errorf("%s: outside the repository", j.rel(abs))
	}
	return resolved, nil
}

// evalExisting resolves the symlinks of the longest existing prefix of abs,
// so that a missing file is judged by the folder it would be in.
func (j *jail) evalExisting(abs string) (string, error) {
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

// rel shows a path relative to the repository, for messages.
func (j *jail) rel(path string) string {
	if r, err := filepath.Rel(j.root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

func readOnly(path string) error {
	return fmt.Errorf("%s: the repository is read-only while rendering", path)
}

func (j *jail) Create(path string) (filesys.File, error) { return nil, readOnly(path) }
func (j *jail) Mkdir(path string) error                  { return readOnly(path) }
func (j *jail) MkdirAll(path string) error               { return readOnly(path) }
func (j *jail) RemoveAll(path string) error              { return readOnly(path) }
func (j *jail) WriteFile(path string, _ []byte) error    { return readOnly(path) }

func (j *jail) Open(path string) (filesys.File, error) {
	p, err := j.inside(path)
	if err != nil {
		return nil, err
	}
	return j.disk.Open(p)
}

func (j *jail) IsDir(path string) bool {
	p, err := j.inside(path)
	return err == nil && j.disk.IsDir(p)
}

func (j *jail) Exists(path string) bool {
	p, err := j.inside(path)
	return err == nil && j.disk.Exists(p)
}

func (j *jail) ReadDir(path string) ([]string, error) {
	p, err := j.inside(path)
	if err != nil {
		return nil, err
	}
	return j.disk.ReadDir(p)
}

func (j *jail) ReadFile(path string) ([]byte, error) {
	p, err := j.inside(path)
	if err != nil {
		return nil, err
	}
	return j.disk.ReadFile(p)
}

func (j *jail) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	if _, err := j.inside(path); err != nil {
		return "", "", err
	}
	return j.disk.CleanedAbs(path)
}

// Glob keeps only the matches inside the jail.
func (j *jail) Glob(pattern string) ([]string, error) {
	matches, err := j.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	kept := matches[:0]
	for _, m := range matches {
		if _, err := j.inside(m); err == nil {
			kept = append(kept, m)
		}
	}
	return kept, nil
}

func (j *jail) Walk(path string, walkFn filepath.WalkFunc) error {
	if _, err := j.inside(path); err != nil {
		return err
	}
	return j.disk.Walk(path, walkFn)
}
