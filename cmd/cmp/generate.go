package main

import (
	"fmt"
	"os"
	"runtime/debug"

	log "github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/cmpenv"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// generateCmd is the CMP entry: the app folder is the working folder, the
// rest comes from Argo CD's environment. Stdout gets the manifests only when
// all of them rendered.
func generateCmd(sys system) *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Render this folder for the site Argo CD names (the CMP entry point)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if sys.shortLived != nil {
				sys.shortLived()
			}
			env := cmpenv.Read(sys.getenv)
			if env.Mode != cmpenv.ModeSite && env.Mode != cmpenv.ModeApps {
				return fmt.Errorf("plugin env MODE=%q is not supported; use %s (the default, one site) or %s (the app-of-apps)", env.Mode, cmpenv.ModeSite, cmpenv.ModeApps)
			}
			if env.Mode == cmpenv.ModeSite && env.Site == "" {
				return fmt.Errorf("no site given: set the Application's plugin env SITE (or parameter site) to one of the sites in %s", config.FileName)
			}
			if env.Mode == cmpenv.ModeSite {
				render.Warm() // overlaps kustomize's set-up with reading the files below
			}
			settings, err := config.LoadSettings(sys.getenv(config.SettingsEnv))
			if err != nil {
				return err
			}
			appDir, err := sys.getwd()
			if err != nil {
				return fmt.Errorf("finding the app folder: %w", err)
			}
			repoRoot, err := env.RepoRoot(appDir)
			if err != nil {
				return err
			}
			var out []byte
			if env.Mode == cmpenv.ModeApps {
				out, err = renderApps(appDir, repoRoot, render.AppsOptions{
					RepoURL: env.RepoURL, TargetRevision: env.TargetRevision, Path: env.SourcePath, Namespace: env.Namespace, Settings: settings,
				})
			} else {
				out, err = renderYAML(appDir, repoRoot, render.Options{Site: env.Site, Namespace: env.Namespace, Settings: settings, Version: version})
			}
			if err != nil {
				return err
			}
			_, err = sys.stdout.Write(out)
			return err
		},
	}
}

// shortLived tunes the garbage collector for a process that lives for
// milliseconds and allocates a few MiB, as the cmp-server starts one per
// manifest generation: collecting would cost more than it frees (about a
// quarter of the run). The memory limit still makes a huge app collect. A
// GOGC or GOMEMLIMIT the operator set wins.
func shortLived() {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(128 << 20)
	}
}

// renderApps loads the policy and renders the app-of-apps.
func renderApps(appDir, repoRoot string, o render.AppsOptions) ([]byte, error) {
	p, err := config.Load(appDir, repoRoot)
	if err != nil {
		return nil, err
	}
	return render.Apps(p, o)
}

// renderYAML loads the policy and renders one site to YAML.
func renderYAML(appDir, repoRoot string, o render.Options) ([]byte, error) {
	p, err := config.Load(appDir, repoRoot)
	if err != nil {
		return nil, err
	}
	o.AppDir, o.RepoRoot = appDir, repoRoot
	res, err := render.Render(p, o)
	if err != nil {
		return nil, err
	}
	log.WithFields(log.Fields{"site": res.Site.Name, "role": res.Role, "hooks": len(res.Hooks)}).Debug("rendered")
	return res.YAML()
}
