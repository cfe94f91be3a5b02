// Package cephlab drives the two-site Ceph lab (hack/ceph-lab) for the
// end-to-end suites: up and down in a folder of its own, each site's
// connection, CephX users made as Rook makes a CephClient's, and the lab's
// own commands (kill, start, ceph, rbd) against a site. The Ceph suite and
// the full loop both drive the lab through it.
package cephlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// Sites are the lab's two sites.
var Sites = []string{"site-a", "site-b"}

// Lab is one lab: the script, its folder and the environment that places it
// (CEPH_LAB_DIR, CEPH_LAB_IP_A/B), so that it runs beside another lab.
type Lab struct {
	Script string
	Dir    string
	// Env is added to the script's environment (and to nothing else).
	Env []string
	// CephRoot is the Debian root folder of the lab's Ceph release (set by
	// Release; "" is the host's own Ceph).
	CephRoot string
}

// New is the lab of the repository at root in dir; ips, if given, are the
// monitors' loopback addresses of site-a and site-b.
func New(root, dir string, ips ...string) *Lab {
	l := &Lab{Script: filepath.Join(root, "hack", "ceph-lab"), Dir: dir, Env: []string{"CEPH_LAB_DIR=" + dir}}
	for i, ip := range ips {
		l.Env = append(l.Env, fmt.Sprintf("CEPH_LAB_IP_%c=%s", 'A'+i, ip))
	}
	return l
}

// Run runs hack/ceph-lab with args and returns what it printed, stdout and
// stderr together.
func (l *Lab) Run(args ...string) ([]byte, error) {
	out, err := l.cmd(args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("hack/ceph-lab %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// Output runs hack/ceph-lab with args and returns its stdout alone.
func (l *Lab) Output(args ...string) ([]byte, error) {
	out, err := l.cmd(args...).Output()
	if err != nil {
		return out, fmt.Errorf("hack/ceph-lab %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

func (l *Lab) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(l.Script, args...)
	cmd.Env = append(os.Environ(), l.Env...)
	return cmd
}

// Up brings both sites up, stopping first a lab that a killed run left in
// the same folder.
func (l *Lab) Up() error {
	if _, err := os.Stat(filepath.Join(l.Dir, "lab.env")); err == nil {
		if _, err := l.Run("down"); err != nil {
			return fmt.Errorf("stopping the lab a previous run left at %s: %w", l.Dir, err)
		}
	}
	_, err := l.Run("up")
	return err
}

// Down stops both sites and removes the lab's data.
func (l *Lab) Down() error {
	_, err := l.Run("down")
	return err
}

// Conn is how the lab's admin reaches a site (`hack/ceph-lab env SITE`).
func (l *Lab) Conn(site string) (rbd.Conn, error) {
	out, err := l.Output("env", site)
	if err != nil {
		return rbd.Conn{}, err
	}
	c := rbd.Conn{}
	for _, f := range strings.Fields(strings.TrimPrefix(strings.TrimSpace(string(out)), "export ")) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "CEPH_CONF":
			c.Conf = v
		case "CEPH_KEYRING":
			c.Keyring = v
		case "CEPH_ID":
			c.ID = v
		case "CEPH_MON_HOST":
			c.MonHost = v
		}
	}
	if c.Conf == "" {
		return c, fmt.Errorf("hack/ceph-lab env %s printed no CEPH_CONF: %s", site, out)
	}
	return c, nil
}

// User creates (or finds) the CephX user client.NAME on a site with caps
// (pairs of entity and cap, as `ceph auth get-or-create` takes them, and as
// Rook gives a CephClient's) and returns its key.
func (l *Lab) User(site, name string, caps ...string) (string, error) {
	if _, err := l.Run(append([]string{"ceph", site, "auth", "get-or-create", "client." + name}, caps...)...); err != nil {
		return "", fmt.Errorf("making client.%s on %s: %w", name, site, err)
	}
	key, err := l.Output("ceph", site, "auth", "print-key", "client."+name)
	if err != nil {
		return "", fmt.Errorf("reading client.%s's key on %s: %w", name, site, err)
	}
	return strings.TrimSpace(string(key)), nil
}

// Pools adds pools beside the lab's replicapool on both sites, mirrored per
// image between them as replicapool is (`hack/ceph-lab pool`).
func (l *Lab) Pools(names ...string) error {
	if len(names) == 0 {
		return nil
	}
	_, err := l.Run(append([]string{"pool"}, names...)...)
	return err
}

// HostSuite is the Debian suite of the machine the tests run on: its own Ceph
// (16.2 on Debian 12) needs no root folder.
const HostSuite = "bookworm"

// Release makes the lab and the rbd, ceph and python3 that a test finds on
// its PATH those of Debian suite's Ceph (hack/ceph-root: trixie holds 18.2,
// sid 20.2), built once and cached. It returns the PATH to use; the lab's
// own commands then run inside the suite's root. The host's suite, or none,
// leaves everything as it is.
func (l *Lab) Release(root, suite, binDir string) (path string, err error) {
	path = os.Getenv("PATH")
	if suite == "" || suite == HostSuite {
		return path, nil
	}
	script := filepath.Join(root, "hack", "ceph-root")
	out, err := exec.Command(script, "path", suite).Output()
	if err != nil {
		return "", fmt.Errorf("hack/ceph-root path %s: %w%s", suite, err, stderrOf(err))
	}
	cephRoot := strings.TrimSpace(string(out))
	if out, err := exec.Command(script, "bin", cephRoot, binDir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("hack/ceph-root bin: %w: %s", err, out)
	}
	l.Env = append(l.Env, "CEPH_LAB_ROOT="+cephRoot)
	l.CephRoot = cephRoot
	return binDir + string(os.PathListSeparator) + path, nil
}

func stderrOf(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(exit.Stderr) > 0 {
		return ":\n" + string(exit.Stderr)
	}
	return ""
}

// versionPattern finds x.y.z in `ceph --version`'s "ceph version 20.2.4 (...)".
var versionPattern = regexp.MustCompile(`ceph version (\d+\.\d+\.\d+)`)

// Version is the release of the Ceph client first on PATH (x.y.z).
func Version() (string, error) {
	out, err := exec.Command("ceph", "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ceph --version: %w: %s", err, out)
	}
	m := versionPattern.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("ceph --version printed no x.y.z: %s", out)
	}
	return string(m[1]), nil
}

// Namespaces adds RADOS namespaces (pool/namespace) to lab pools on both
// sites, mirrored per image as their pools are (`hack/ceph-lab namespace`).
func (l *Lab) Namespaces(specs ...string) error {
	if len(specs) == 0 {
		return nil
	}
	_, err := l.Run(append([]string{"namespace"}, specs...)...)
	return err
}
