// Package rbd is a typed client over the rbd CLI: image info, mirror status,
// mirror snapshots, promote, demote and resync, with rbd's JSON parsed and its
// failures sorted into the outcomes a failover decides on.
package rbd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	log "github.com/sirupsen/logrus"
)

// Conn says how to reach one Ceph cluster. Empty fields are left to rbd's
// defaults (/etc/ceph/ceph.conf and client.admin in a Rook toolbox Job).
type Conn struct {
	// Binary is the rbd executable; default "rbd".
	Binary  string
	Conf    string
	Cluster string
	ID      string
	Keyring string
	// KeyFile holds only the user's key, as a mounted Secret does.
	KeyFile string
	// MonHost lists the monitors (host:port,...) where there is no ceph.conf.
	MonHost string
}

// binary is the rbd executable.
func (c Conn) binary() string {
	if c.Binary == "" {
		return "rbd"
	}
	return c.Binary
}

func (c Conn) argv(args ...string) []string {
	out := []string{c.binary()}
	if c.MonHost != "" && c.Conf == "" {
		// The monitors and the key are given: an empty conf keeps rbd from
		// looking for /etc/ceph/ceph.conf and printing errors when it is absent.
		c.Conf = os.DevNull
	}
	for _, o := range []struct{ flag, value string }{
		{"--conf", c.Conf}, {"--cluster", c.Cluster}, {"--id", c.ID}, {"--keyring", c.Keyring}, {"--keyfile", c.KeyFile}, {"--mon_host", c.MonHost},
	} {
		if o.value != "" {
			out = append(out, o.flag, o.value)
		}
	}
	return append(out, args...)
}

// Output is what one command did.
type Output struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Runner runs a command line. Tests replay recorded outputs through it.
type Runner interface {
	Run(ctx context.Context, argv []string) (Output, error)
}

// DefaultWaitDelay is how long a killed command's output may stay open:
// a child that escaped the process group (setsid) and holds it must not
// hold the call for its whole life.
const DefaultWaitDelay = 5 * time.Second

// Exec runs commands as processes, never through a shell. A command still
// running when ctx ends is killed with its whole process group.
type Exec struct {
	// WaitDelay bounds the wait for a killed command's output (default
	// DefaultWaitDelay).
	WaitDelay time.Duration
}

// grace is the command's WaitDelay.
func (e Exec) grace() time.Duration {
	if e.WaitDelay > 0 {
		return e.WaitDelay
	}
	return DefaultWaitDelay
}

// Run implements Runner.
func (e Exec) Run(ctx context.Context, argv []string) (Output, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = e.grace()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := Output{Stdout: []byte(stdout.String()), Stderr: []byte(stderr.String())}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return out, fmt.Errorf("%s: %w", strings.Join(argv, " "), ctx.Err())
	case errors.As(err, &exit):
		out.ExitCode = exit.ExitCode()
		return out, nil
	case err != nil:
		return out, fmt.Errorf("running %s: %w", argv[0], err)
	}
	return out, nil
}

// Client runs rbd against one cluster.
type Client struct {
	Conn   Conn
	Runner Runner
	// CallTimeout bounds each rbd call (a call to a cluster that lost its
	// quorum, or a forced promote, can hang).
	CallTimeout time.Duration
	// Log, if set, gets each call at debug level: its arguments, exit code
	// and how long it took.
	Log log.FieldLogger
}

// NewClient is a client that runs rbd as a process.
func NewClient(conn Conn, callTimeout time.Duration) *Client {
	return &Client{Conn: conn, Runner: Exec{}, CallTimeout: callTimeout}
}

// run runs rbd with args and turns a failure into a *CmdError.
func (c *Client) run(ctx context.Context, timeout time.Duration, args ...string) ([]byte, error) {
	if timeout <= 0 {
		timeout = c.CallTimeout
	}
	limit := timeout // what the error says: the step's deadline may come first
	if dl, ok := ctx.Deadline(); ok && (timeout <= 0 || time.Until(dl) < timeout) {
		limit = time.Until(dl).Round(100 * time.Millisecond)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	argv := c.Conn.argv(args...)
	start := time.Now()
	out, err := c.Runner.Run(ctx, argv)
	took := time.Since(start)
	if c.Log != nil {
		c.Log.WithFields(log.Fields{"args": strings.Join(args, " "), "exit": out.ExitCode, "took": took.Round(time.Millisecond).String()}).Debug("rbd")
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, &CmdError{Args: args, ExitCode: -1, Stderr: "timed out after " + limit.String(), timedOut: true}
		}
		return nil, err
	}
	if out.ExitCode != 0 {
		return out.Stdout, &CmdError{Args: args, ExitCode: out.ExitCode, Stderr: string(out.Stderr)}
	}
	return out.Stdout, nil
}

func (c *Client) runJSON(ctx context.Context, into any, args ...string) error {
	out, err := c.run(ctx, 0, append(args, "--format", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, into); err != nil {
		return fmt.Errorf("rbd %s: reading its JSON: %w", strings.Join(args, " "), err)
	}
	return nil
}

// Info is `rbd info`.
func (c *Client) Info(ctx context.Context, img Image) (Info, error) {
	var info Info
	return info, c.runJSON(ctx, &info, "info", img.String())
}

// MirrorStatus is `rbd mirror image status`.
func (c *Client) MirrorStatus(ctx context.Context, img Image) (MirrorStatus, error) {
	var st MirrorStatus
	return st, c.runJSON(ctx, &st, "mirror", "image", "status", img.String())
}

// Snapshots is `rbd snap ls --all`: user and mirror snapshots.
func (c *Client) Snapshots(ctx context.Context, img Image) ([]Snapshot, error) {
	var snaps []Snapshot
	return snaps, c.runJSON(ctx, &snaps, "snap", "ls", "--all", img.String())
}

// Promote makes the image primary. Without force Ceph refuses while the peer
// is primary or its demotion has not replayed (ErrNotYet). timeout bounds the
// call, since a forced promote can hang.
func (c *Client) Promote(ctx context.Context, img Image, force bool, timeout time.Duration) error {
	args := []string{"mirror", "image", "promote"}
	if force {
		args = append(args, "--force")
	}
	_, err := c.run(ctx, timeout, append(args, img.String())...)
	return err
}

// Demote makes the image non-primary.
func (c *Client) Demote(ctx context.Context, img Image) error {
	_, err := c.run(ctx, 0, "mirror", "image", "demote", img.String())
	return err
}

// Resync flags a non-primary image to be recreated from the primary.
func (c *Client) Resync(ctx context.Context, img Image) error {
	_, err := c.run(ctx, 0, "mirror", "image", "resync", img.String())
	return err
}

// Locker is one holder of an image's lock, as `rbd lock ls` lists it: the
// exclusive lock's holder is the client that may write the image now.
type Locker struct {
	ID      string `json:"id"`
	Locker  string `json:"locker"` // the holder's RADOS client: "client.4146"
	Address string `json:"address"`
}

// Lockers is `rbd lock ls`: who holds the image's locks (16.2, 18.2 and
// 20.2 print the same list).
func (c *Client) Lockers(ctx context.Context, img Image) ([]Locker, error) {
	var list []Locker
	return list, c.runJSON(ctx, &list, "lock", "ls", img.String())
}
