package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	log "github.com/sirupsen/logrus"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// lastCommit reads rbd-dr.yaml as the repository's last commit holds it:
// what Argo CD, and so the clusters, run. It returns nil (and says why at
// debug level) where there is no such commit or file, and plan then plans
// the file as it is. Its second value names the commit for the person.
func lastCommit(appDir, root string) (*config.Policy, string) {
	rel, err := filepath.Rel(root, filepath.Join(appDir, config.FileName))
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, ""
	}
	rel = filepath.ToSlash(rel)
	// git would look above root for a repository; only root's own counts.
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		return nil, ""
	}
	commit, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		log.WithError(err).Debug("no commit to plan against")
		return nil, ""
	}
	id := strings.TrimSpace(string(commit))
	data, err := exec.Command("git", "-C", root, "show", id+":"+rel).Output()
	if err != nil {
		log.WithError(err).WithField("file", rel).Debug("the last commit has no such file")
		return nil, ""
	}
	p, err := config.Parse(data, config.Options{DisplayName: fmt.Sprintf("%s at %s", rel, id), AppDir: appDir, RepoRoot: root})
	if err != nil {
		log.WithError(err).Debug("the last commit's file does not load")
		return nil, ""
	}
	return p, fmt.Sprintf("the last commit (%s), what the clusters run", id)
}
