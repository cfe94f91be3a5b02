package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func versionCmd(sys system) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(sys.stdout, "argocd-rbd-dr "+version)
			return err
		},
	}
}
