package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
)

// hookCmd is what the rendered hook Jobs run. Its command line is the
// contract in pkg/hookcmd.
func hookCmd(sys system) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hook STEP [flags] TARGET...",
		Short: "Run one failover step (inside a hook Job)",
	}
	for _, step := range hookcmd.Steps {
		var req hookcmd.Request
		sub := &cobra.Command{
			Use:                "" + string(step) + " [flags] TARGET...",
			Short:              "The " + string(step) + " step",
			DisableFlagParsing: true,
			RunE: func(_ *cobra.Command, args []string) error {
				r, err := hookcmd.Parse(string(step), args)
				if err != nil {
					return err
				}
				return runStep(sys, r)
			},
		}
		sub.Flags().AddFlagSet(hookcmd.FlagSet(step, &req))
		cmd.AddCommand(sub)
	}
	return cmd
}

// runStep runs a validated request. The steps' Ceph and Kubernetes work is
// not in this build yet: refusing keeps a PreSync hook from letting the app
// start with its images in the wrong role.
func runStep(_ system, r hookcmd.Request) error {
	return fmt.Errorf("hook %s: the failover steps are not part of this build; the sync stops here so that no app starts on images in the wrong role", r.Step)
}

// copySelfCmd delivers the binary into a Ceph Job's shared emptyDir, from an
// image that has no shell or cp.
func copySelfCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "copy-self DEST",
		Short:  "Copy this binary to DEST (used by the Ceph hook Jobs' initContainer)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(_ *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding this binary: %w", err)
			}
			return copyFile(self, args[0])
		},
	}
}

func copyFile(src, dest string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".copy-*")
	if err != nil {
		return fmt.Errorf("copying to %s: %w", dest, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("copying to %s: %w", dest, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return fmt.Errorf("copying to %s: %w", dest, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("copying to %s: %w", dest, err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("copying to %s: %w", dest, err)
	}
	return nil
}
