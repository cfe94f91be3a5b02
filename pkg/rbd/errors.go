package rbd

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The outcomes of a failed rbd call that the failover steps decide on.
var (
	// ErrNotYet: promote refused because the peer is primary or its demotion
	// has not replayed yet (exit 16), or the image is still read-only right
	// after the demotion arrived (exit 30). Retry.
	ErrNotYet = errors.New("the peer's demotion has not replayed here yet")
	// ErrAlreadyPrimary: promote of an image that is primary. Done.
	ErrAlreadyPrimary = errors.New("the image is already primary")
	// ErrNotPrimary: demote of an image that is not primary. Done.
	ErrNotPrimary = errors.New("the image is not primary")
	// ErrNotFound: no such image, or one being recreated by a resync (then
	// info and snap ls exit 2 and mirror status exits 2 or 22 for a while).
	ErrNotFound = errors.New("no such image")
	// ErrTimeout: the call did not return within its timeout.
	ErrTimeout = errors.New("rbd timed out")
	// ErrDenied: the user's caps do not allow the call (EPERM or EACCES);
	// a schedule read without mgr caps says so too.
	ErrDenied = errors.New("the Ceph user's caps do not allow it")
	// ErrLockHolderGone: the call needed the image's exclusive lock, its
	// holder did not answer (gone without releasing it: a dead node, an
	// unclean unmap), and breaking the lock blocklists the holder, which the
	// user's mon caps do not allow ('profile rbd' does). Also ErrDenied.
	ErrLockHolderGone = errors.New("a client that is gone holds the image's lock")
)

// CmdError is a failed rbd call: what was run and what rbd said.
type CmdError struct {
	Args     []string
	ExitCode int
	Stderr   string
	timedOut bool
}

func (e *CmdError) Error() string {
	return fmt.Sprintf("rbd %s: exit %d: %s", strings.Join(e.Args, " "), e.ExitCode, summary(e.Stderr))
}

// Is sorts the failure into the outcomes above.
func (e *CmdError) Is(target error) bool {
	switch target {
	case ErrTimeout:
		return e.timedOut
	case ErrNotYet:
		return e.ExitCode == 16 && strings.Contains(e.Stderr, "demotion is not propagated yet") || e.ExitCode == 30
	case ErrAlreadyPrimary:
		return strings.Contains(e.Stderr, "already primary")
	case ErrNotPrimary:
		return strings.Contains(e.Stderr, "image is not primary") || strings.Contains(e.Stderr, "is already non-primary")
	case ErrLockHolderGone:
		return strings.Contains(e.Stderr, "failed to blocklist lock owner")
	case ErrDenied:
		return e.ExitCode == 1 && strings.Contains(e.Stderr, "Operation not permitted") || e.ExitCode == 13 || strings.Contains(e.Stderr, "Permission denied")
	case ErrNotFound:
		return e.ExitCode == 2 || strings.Contains(e.Stderr, "No such file or directory") ||
			e.ExitCode == 22 && strings.Contains(e.Stderr, "mirroring not enabled on the image")
	}
	return false
}

// logPrefix is librbd's "2026-11-24T09:07:00.449+0000 7f5f56ffd6c0 -1 ";
// objectAddr an address like "0x5588799ed590 " after the component name.
var (
	logPrefix  = regexp.MustCompile(`^\S+T\S+ [0-9a-f]+ +-?\d+ `)
	objectAddr = regexp.MustCompile(`: 0x[0-9a-f]+ `)
	// logStart finds a log line that rbd printed without a newline before it.
	logStart = regexp.MustCompile(`(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d{4} )`)
)

// summary keeps what a person needs of rbd's stderr, on one line.
func summary(stderr string) string {
	var parts []string
	for _, line := range strings.Split(logStart.ReplaceAllString(stderr, "\n$1"), "\n") {
		line = strings.TrimSpace(logPrefix.ReplaceAllString(strings.TrimSpace(line), ""))
		line = objectAddr.ReplaceAllString(line, ": ")
		if line != "" && !slices.Contains(parts, line) {
			parts = append(parts, line)
		}
	}
	if len(parts) == 0 {
		return "no message"
	}
	return strings.Join(parts, "; ")
}
