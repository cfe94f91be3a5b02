package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// renderCmd is generate for a person at a terminal.
func renderCmd(sys system) *cobra.Command {
	var site, role string
	var apps bool
	var source render.AppsOptions
	var f appFlags
	cmd := &cobra.Command{
		Use:   "render DIR (--site SITE | --apps --repo-url URL)",
		Short: "Print what SITE's Argo CD would apply for the app folder DIR, or the app-of-apps",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := render.ParseRole(role)
			if err != nil {
				return err
			}
			appDir, root, err := f.folder(args[0])
			if err != nil {
				return err
			}
			settings, err := f.settings()
			if err != nil {
				return err
			}
			var out []byte
			switch {
			case apps && site != "":
				return fmt.Errorf("give --site or --apps, not both")
			case apps:
				if source.Path == "" {
					rel, err := filepath.Rel(root, appDir)
					if err != nil {
						return err
					}
					source.Path = filepath.ToSlash(rel)
				}
				source.Settings = settings
				out, err = renderApps(appDir, root, source)
			case site == "":
				return fmt.Errorf("give --site SITE (or --apps for the app-of-apps)")
			default:
				out, err = renderYAML(appDir, root, render.Options{Site: site, Role: r, Namespace: f.namespace, Settings: settings, Version: version})
			}
			if err != nil {
				return err
			}
			_, err = sys.stdout.Write(out)
			return err
		},
	}
	f.add(cmd, sys)
	cmd.Flags().StringVar(&site, "site", "", "the site to render")
	cmd.Flags().BoolVar(&apps, "apps", false, "render the app-of-apps: one Application per site")
	cmd.Flags().StringVar(&source.RepoURL, "repo-url", "", "with --apps: the repository URL the Applications use")
	cmd.Flags().StringVar(&source.TargetRevision, "revision", "HEAD", "with --apps: the revision the Applications track")
	cmd.Flags().StringVar(&source.Path, "path", "", "with --apps: the app folder in the repository (default: DIR relative to the repository root)")
	cmd.Flags().StringVar(&source.Namespace, "apps-namespace", "argocd", "with --apps: the namespace of the Applications (Argo CD's)")
	cmd.Flags().StringVar(&role, "role", "", "render as active or passive instead of what activeSite says")
	return cmd
}
