package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	log "github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
)

// run executes one command line and returns the process exit code.
func run(args []string, sys system) int {
	format := "text"
	root := &cobra.Command{
		Use:           "argocd-rbd-dr",
		Short:         "Argo CD plugin that fails apps over between sites by moving their mirrored RBD images",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return setupLogging(sys, format, cmd.Flag("log-level").Value.String())
		},
	}
	root.SetArgs(args)
	root.SetOut(sys.stdout)
	root.SetErr(sys.stderr)
	if env := sys.getenv("ARGOCD_RBD_DR_LOG_FORMAT"); env != "" {
		format = env
	}
	root.PersistentFlags().StringVar(&format, "log-format", format, "log format on stderr: text or json (env ARGOCD_RBD_DR_LOG_FORMAT)")
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(
		generateCmd(sys), renderCmd(sys), validateCmd(sys), parametersCmd(sys),
		versionCmd(sys), hookCmd(sys), copySelfCmd(), planCmd(sys), activateCmd(sys), statusCmd(sys), adoptCmd(sys),
	)
	if err := root.Execute(); err != nil {
		reportError(sys, format, err)
		return 1
	}
	return 0
}

func setupLogging(sys system, format, level string) error {
	log.SetOutput(sys.stderr)
	switch format {
	case "json":
		// Steps take seconds: their logs need sub-second times.
		log.SetFormatter(&log.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	case "text":
		log.SetFormatter(&log.TextFormatter{DisableTimestamp: true})
	default:
		return fmt.Errorf("--log-format %q: use text or json", format)
	}
	lvl, err := log.ParseLevel(level)
	if err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	log.SetLevel(lvl)
	return nil
}

// reportError writes the error as one line on stderr: Argo CD shows it to
// the person as it is. A list of problems (from --all) gets a line each.
func reportError(sys system, format string, err error) {
	oneLine := func(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
	var list *problemList
	if !errors.As(err, &list) {
		list = &problemList{header: oneLine(err)}
	}
	items := make([]string, len(list.items))
	for i, item := range list.items {
		items[i] = oneLine(item)
	}
	if format == "json" {
		entry := map[string]any{"level": "error", "msg": list.header}
		if len(items) > 0 {
			entry["problems"] = items
		}
		line, _ := json.Marshal(entry)
		fmt.Fprintln(sys.stderr, string(line))
		return
	}
	fmt.Fprintln(sys.stderr, "argocd-rbd-dr: "+list.header)
	for _, item := range items {
		fmt.Fprintln(sys.stderr, "  - "+item)
	}
}

// problemList is every problem of a command over many apps, reported at
// once so that a person fixes them in one round.
type problemList struct {
	header string
	items  []error
}

func (l *problemList) Error() string {
	msgs := []string{l.header}
	for _, item := range l.items {
		msgs = append(msgs, item.Error())
	}
	return strings.Join(msgs, "\n")
}

func (l *problemList) Unwrap() []error { return l.items }
