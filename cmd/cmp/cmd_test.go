package main

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// runIn runs a command line in-process with dir as the working folder and
// env as the whole environment, plus the example's platform settings unless
// env names RBD_DR_SETTINGS.
func runIn(t *testing.T, dir string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	if _, set := env[config.SettingsEnv]; !set {
		path, err := filepath.Abs("../../examples/rbd-dr-settings.yaml")
		if err != nil {
			t.Fatal(err)
		}
		env = maps.Clone(env)
		if env == nil {
			env = map[string]string{}
		}
		env[config.SettingsEnv] = path
	}
	var stdout, stderr bytes.Buffer
	code := run(args, system{
		getenv: func(k string) string { return env[k] },
		getwd:  func() (string, error) { return filepath.Abs(dir) },
		stdout: &stdout,
		stderr: &stderr,
	})
	return code, stdout.String(), stderr.String()
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env
}

// caseSettings is the platform settings file a case runs with: its own
// settings.yaml, else the shared one; an env that names RBD_DR_SETTINGS
// (even empty) wins.
func caseSettings(t *testing.T, dir string, env map[string]string) {
	t.Helper()
	if _, set := env[config.SettingsEnv]; set {
		return
	}
	path, err := filepath.Abs(filepath.Join(dir, "settings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		path, _ = filepath.Abs("testdata/settings.yaml")
	}
	env[config.SettingsEnv] = path
}

// Each folder of testdata/errors is a bad input to generate: repo/ is the
// repository, env the environment Argo CD would give, error a part of the
// one-line message the person must see, an optional settings.yaml the
// platform's settings (default testdata/settings.yaml), and an optional cwd
// the folder below repo/ to run in. Adding a case is adding a folder.
func TestGenerateBadInput(t *testing.T) {
	dirs, err := filepath.Glob("testdata/errors/*")
	if err != nil || len(dirs) < 20 {
		t.Fatalf("want at least 20 error cases, found %d (%v)", len(dirs), err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			env := readEnv(t, filepath.Join(dir, "env"))
			caseSettings(t, dir, env)
			want, err := os.ReadFile(filepath.Join(dir, "error"))
			if err != nil {
				t.Fatal(err)
			}
			// The cmp-server runs generate in the app folder; a case may place
			// it elsewhere than ARGOCD_APP_SOURCE_PATH says, in a file cwd.
			cwd := env["ARGOCD_APP_SOURCE_PATH"]
			if b, err := os.ReadFile(filepath.Join(dir, "cwd")); err == nil {
				cwd = strings.TrimSpace(string(b))
			}
			appDir := filepath.Join(dir, "repo", filepath.FromSlash(cwd))
			code, stdout, stderr := runIn(t, appDir, env, "generate")
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout must stay empty on error, got %d bytes", len(stdout))
			}
			if n := strings.Count(stderr, "\n"); n != 1 {
				t.Errorf("stderr has %d lines, want one: %q", n, stderr)
			}
			if w := strings.TrimSpace(string(want)); !strings.Contains(stderr, w) {
				t.Errorf("stderr\n  %s\nwant it to contain\n  %s", strings.TrimSpace(stderr), w)
			}
		})
	}
}
