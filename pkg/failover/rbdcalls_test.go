package failover_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// Every rbd call that fails is reported as failed, never as done; the
// answers that mean "already there" stay successes; a non-forced promote
// that timed out is tried again.

// refused is rbd's answer to a key without the right: not an outcome any
// step may take for success.
func refused(verb ...string) error {
	return &rbd.CmdError{Args: verb, ExitCode: 1, Stderr: "librbd: Operation not permitted"}
}

// timedOut is a call that did not return within its timeout.
var timedOut = fmt.Errorf("rbd mirror image promote: %w", rbd.ErrTimeout)

func TestDemoteCallFailing(t *testing.T) {
	proven := func() [][]rbd.Snapshot {
		return [][]rbd.Snapshot{list(own(4, 1795511100, "primary"), own(5, 1795511193, "primary", peerUUID))}
	}
	t.Run("refused: reported as failed, the image still primary", func(t *testing.T) {
		f := &fake{primary: true, snaps: proven(), statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511100)}, demote: []error{refused("mirror", "image", "demote")}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "Operation not permitted") || res.Action == "demoted" || res.After == "non-primary" || f.count("demote") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if failover.Report([]failover.Result{res}).Err() == nil {
			t.Error("the report does not fail the step")
		}
	})
	t.Run("a gone lock holder the user may not blocklist: refused, saying what holds it and what to do", func(t *testing.T) {
		// What Ceph 20.2 printed in the full loop, to a user with mon 'allow r',
		// when the app's process had died without releasing the lock.
		gone := &rbd.CmdError{Args: []string{"mirror", "image", "demote"}, ExitCode: 13,
			Stderr: "2026-12-06T02:06:54.123+0000 7f5f56ffd6c0 -1 librbd::managed_lock::BreakRequest: 0x5588799ed590 handle_blocklist: failed to blocklist lock owner: (13) Permission denied"}
		f := &fake{primary: true, snaps: proven(), statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511100)}, demote: []error{gone}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !errors.Is(res.Err, rbd.ErrLockHolderGone) || !strings.Contains(res.Err.Error(), "still holds the image's exclusive lock") ||
			!strings.Contains(res.Err.Error(), "rbd lock ls "+img.String()) || res.Action == "demoted" || f.count("demote") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("already non-primary: done", func(t *testing.T) {
		f := &fake{primary: true, snaps: proven(), statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511100)}, demote: []error{&rbd.CmdError{Args: []string{"mirror", "image", "demote"}, ExitCode: 22, Stderr: "rbd: error demoting image to non-primary: image is not primary"}}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "demoted" || res.After != "non-primary" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestPromoteCallFailing(t *testing.T) {
	arrived := func() [][]rbd.Snapshot {
		return [][]rbd.Snapshot{list(copied(7, 6, "non-primary", true, 16), copied(9, 8, "demoted", true, 16))}
	}
	sawDemoted := func() []rbd.MirrorStatus { return []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")} }
	t.Run("refused: reported as failed at once, not retried", func(t *testing.T) {
		f := &fake{statuses: sawDemoted(), snaps: arrived(), promote: []error{refused("mirror", "image", "promote")}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || res.Action == "promoted" || res.After == "primary" || f.count("promote") != 1 || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("timed out: tried again", func(t *testing.T) {
		f := &fake{statuses: sawDemoted(), snaps: arrived(), promote: []error{timedOut, timedOut, nil}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || f.count("promote") != 3 || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("already primary: done", func(t *testing.T) {
		f := &fake{statuses: sawDemoted(), snaps: arrived(), promote: []error{&rbd.CmdError{Args: []string{"mirror", "image", "promote"}, ExitCode: 22, Stderr: "rbd: error promoting image to primary: image is already primary"}}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || res.After != "primary" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestForcedPromoteCallFailing(t *testing.T) {
	peerDown := status(t, "s3_b_replaying", "b")
	peerDown.PeerSites[0].State = "down+stopped"
	gone := func(forced ...error) *fake {
		return &fake{statuses: []rbd.MirrorStatus{peerDown}, promote: []error{notYet}, forced: forced, snaps: [][]rbd.Snapshot{list(copied(9, 5, "non-primary", true, 16))}}
	}
	t.Run("refused: reported as failed, never as force-promoted", func(t *testing.T) {
		f := gone(refused("mirror", "image", "promote", "--force"))
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "forced promote failed") || res.Action == "force-promoted" || res.After == "primary" || f.count("promote --force") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("already primary: done", func(t *testing.T) {
		f := gone(&rbd.CmdError{Args: []string{"mirror", "image", "promote", "--force"}, ExitCode: 22, Stderr: "image is already primary"})
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestResyncCallFailing(t *testing.T) {
	t.Run("resync step: a refused request is reported, not as requested", func(t *testing.T) {
		sb := status(t, "s5_split_brain", "b")
		f := &fake{statuses: []rbd.MirrorStatus{sb, status(t, "s5_resynced_replaying", "b")}, resync: []error{refused("mirror", "image", "resync")}}
		o, _ := opts()
		o.ForcePromoted = true
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, o))
		if res.Err == nil || res.Action == "resync requested" || res.After == "non-primary, replaying" || f.count("resync") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("prepare: a refused request is reported, not as resynced", func(t *testing.T) {
		sb := status(t, "s5_split_brain", "b")
		f := &fake{statuses: []rbd.MirrorStatus{sb, sb, status(t, "s5_resynced_replaying", "b")}, resync: []error{refused("mirror", "image", "resync")}}
		o, _ := opts()
		res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, o))
		if res.Err == nil || res.Action == "resynced from the peer" || f.count("resync") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}
