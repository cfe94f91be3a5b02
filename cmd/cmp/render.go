package main

import (
	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// renderCmd is generate for a person at a terminal.
func renderCmd(sys system) *cobra.Command {
	var site, role, namespace, repoRoot string
	cmd := &cobra.Command{
		Use:   "render DIR --site SITE",
		Short: "Print what SITE's Argo CD would apply for the app folder DIR",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := render.ParseRole(role)
			if err != nil {
				return err
			}
			appDir, root, err := appFolder(args[0], repoRoot)
			if err != nil {
				return err
			}
			out, err := renderYAML(appDir, root, render.Options{Site: site, Role: r, Namespace: namespace})
			if err != nil {
				return err
			}
			_, err = sys.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&site, "site", "", "the site to render (required)")
	cmd.Flags().StringVar(&role, "role", "", "render as active or passive instead of what activeSite says")
	cmd.Flags().StringVar(&namespace, "namespace", "", "the app's namespace where the overlay sets none")
	cmd.Flags().StringVar(&repoRoot, "repo-root", "", "the repository root (default: the folder above DIR holding .git)")
	_ = cmd.MarkFlagRequired("site")
	return cmd
}
