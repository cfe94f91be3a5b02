package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/plan"
)

// planCmd shows, before the commit, what each site's next sync will do.
func planCmd(sys system) *cobra.Command {
	var o plan.Options
	var output, repoRoot string
	var settingsPath string
	cmd := &cobra.Command{
		Use:   "plan DIR [--to SITE] [--force]",
		Short: "Show what each site's next sync will do, in order, for the file as it is or for a failover to SITE",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: use table or json", output)
			}
			if o.Force && o.To == "" {
				return fmt.Errorf("--force plans a forced failover: give the site to fail over to with --to")
			}
			appDir, root, err := appFolder(args[0], repoRoot)
			if err != nil {
				return err
			}
			if o.Settings, err = config.LoadSettings(settingsPath); err != nil {
				return err
			}
			p, err := config.Load(appDir, root)
			if err != nil {
				return err
			}
			o.AppDir, o.RepoRoot = appDir, root
			pl, err := plan.Make(p, o)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(sys.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(pl)
			}
			return writePlan(sys.stdout, pl)
		},
	}
	cmd.Flags().StringVar(&o.To, "to", "", "plan making SITE the active site")
	cmd.Flags().BoolVar(&o.Force, "force", false, "plan a forced failover (forcePromote: true): the old active site is lost")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	settingsFlag(cmd, sys, &settingsPath)
	cmd.Flags().StringVar(&o.Namespace, "namespace", "", "the app's namespace, as the Application's destination gives it (default: apps.namespace of rbd-dr.yaml)")
	cmd.Flags().StringVar(&repoRoot, "repo-root", "", "the repository root (default: the folder above DIR holding .git)")
	return cmd
}

func writePlan(w io.Writer, pl *plan.Plan) error {
	fmt.Fprintf(w, "app %s (%s): activeSite %s, forcePromote %t\n", pl.App, pl.File, pl.ActiveSite, pl.ForcePromote)
	fmt.Fprintf(w, "change: %s\n\n", pl.Change)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tROLE\tAPP WAVE\tHOOK WAVE\tSTEP\tNAMESPACE\tTARGETS")
	for _, s := range pl.Sites {
		for _, st := range s.Steps {
			step := st.Step
			if st.Force {
				step += " --force"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Role, s.AppWave, st.Wave, step, st.Namespace, strings.Join(st.Targets, " "))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t-\tthen\t\t%s\n", s.Name, s.Role, s.AppWave, s.Then)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(pl.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings:")
		for _, warn := range pl.Warnings {
			fmt.Fprintln(w, "  - "+warn)
		}
	}
	return nil
}

// activateCmd is the failover edit: activeSite (and forcePromote) in
// rbd-dr.yaml, every other byte kept.
func activateCmd(sys system) *cobra.Command {
	var force bool
	var repoRoot string
	cmd := &cobra.Command{
		Use:   "activate SITE DIR [--force]",
		Short: "Make SITE the active site in DIR/rbd-dr.yaml (commit and push to fail over)",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			appDir, root, err := appFolder(args[1], repoRoot)
			if err != nil {
				return err
			}
			path := filepath.Join(appDir, config.FileName)
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("reading %s: %w", path, err)
			}
			display := config.FileName
			if rel, err := filepath.Rel(root, path); err == nil {
				display = filepath.ToSlash(rel)
			}
			out, err := config.SetActive(data, args[0], force, config.Options{DisplayName: display, AppDir: appDir, RepoRoot: root})
			if err != nil {
				return err
			}
			st, err := os.Stat(path)
			if err != nil {
				return err
			}
			if err := replaceFile(path, bytes.NewReader(out), st.Mode().Perm()); err != nil {
				return fmt.Errorf("writing %s: %w", path, err)
			}
			fmt.Fprintf(sys.stdout, "%s: activeSite %s, forcePromote %t; review with `argocd-rbd-dr plan %s`, then commit and push\n", display, args[0], force, args[1])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "the old active site is lost: set forcePromote: true (writes after the last mirror snapshot are lost)")
	cmd.Flags().StringVar(&repoRoot, "repo-root", "", "the repository root (default: the folder above DIR holding .git)")
	return cmd
}
