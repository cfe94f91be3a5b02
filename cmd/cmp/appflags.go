package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// appFlags are the flags of the commands that take an app folder DIR:
// where its repository starts, the app's namespace and the platform's
// settings file, declared once so that every command says them alike.
type appFlags struct {
	repoRoot     string
	namespace    string
	settingsPath string
}

// addRepoRoot registers --repo-root alone (activate reads no settings).
func (f *appFlags) addRepoRoot(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.repoRoot, "repo-root", "", "the repository root (default: the folder above DIR holding .git)")
}

// add registers --repo-root, --namespace and --settings; --settings
// defaults to the sidecar's RBD_DR_SETTINGS.
func (f *appFlags) add(cmd *cobra.Command, sys system) {
	f.addRepoRoot(cmd)
	cmd.Flags().StringVar(&f.namespace, "namespace", "", "the app's namespace, as the Application's destination gives it (default: apps.namespace of rbd-dr.yaml)")
	cmd.Flags().StringVar(&f.settingsPath, "settings", sys.getenv(config.SettingsEnv), "the platform's settings file (env "+config.SettingsEnv+"; see examples/rbd-dr-settings.yaml)")
}

// settings loads the platform's settings file.
func (f *appFlags) settings() (*config.Settings, error) {
	return config.LoadSettings(f.settingsPath)
}

// eachApp does one app's work on DIR, or with all on every app folder under
// it. It returns every result, or, if any app fails, every app's problem at
// once (one app's as it is), headed "N of M apps under DIR <what>".
func eachApp[T any](dir string, all bool, what string, do func(dir string) (T, error)) ([]T, error) {
	dirs := []string{dir}
	if all {
		var err error
		if dirs, err = appFolders(dir); err != nil {
			return nil, err
		}
	}
	var out []T
	var problems []error
	for _, d := range dirs {
		v, err := do(d)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		out = append(out, v)
	}
	switch {
	case len(problems) == 0:
		return out, nil
	case !all:
		return nil, problems[0]
	}
	return nil, &problemList{header: fmt.Sprintf("%d of %d apps under %s %s:", len(problems), len(dirs), dir, what), items: problems}
}

// load finds DIR's repository root (folder) and loads its rbd-dr.yaml.
func (f *appFlags) load(dir string) (appDir, root string, p *config.Policy, err error) {
	if appDir, root, err = f.folder(dir); err != nil {
		return "", "", nil, err
	}
	p, err = config.Load(appDir, root)
	return appDir, root, p, err
}

// folder makes DIR absolute and finds its repository root: --repo-root,
// else the nearest folder above holding .git, else DIR itself.
func (f *appFlags) folder(dir string) (string, string, error) {
	appDir, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("app folder %s: %w", dir, err)
	}
	if st, err := os.Stat(appDir); err != nil || !st.IsDir() {
		return "", "", fmt.Errorf("app folder %s: not a folder", dir)
	}
	if f.repoRoot != "" {
		root, err := filepath.Abs(f.repoRoot)
		return appDir, root, err
	}
	for d := appDir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			return appDir, d, nil
		}
		if filepath.Dir(d) == d {
			return appDir, appDir, nil
		}
	}
}
