package main

import (
	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// settingsFlag adds --settings, the platform's settings file, defaulting to
// the sidecar's RBD_DR_SETTINGS.
func settingsFlag(cmd *cobra.Command, sys system, path *string) {
	cmd.Flags().StringVar(path, "settings", sys.getenv(config.SettingsEnv), "the platform's settings file (env "+config.SettingsEnv+"; see examples/rbd-dr-settings.yaml)")
}
