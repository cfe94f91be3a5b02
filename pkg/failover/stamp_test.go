package failover_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// A forced promote records when it made the image primary (where the
// histories split); a planned one continues the peer's history and keeps
// the record its copy carries.
func TestPromoteRecordsWhen(t *testing.T) {
	peerDown := status(t, "s3_b_replaying", "b")
	peerDown.PeerSites[0].State = "down+stopped"
	forced := func(setMetaErr ...error) (*fake, failover.Options) {
		f := &fake{statuses: []rbd.MirrorStatus{peerDown}, promote: []error{notYet}, setMetaErr: setMetaErr,
			meta: map[string]string{failover.PromotedAt: "2026-11-01T00:00:00Z"}}
		o, _ := opts()
		o.Force = true
		return f, o
	}
	t.Run("force-promoted: recorded", func(t *testing.T) {
		f, o := forced()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" || f.meta[failover.PromotedAt] != "2026-11-24T09:02:30Z" {
			t.Errorf("%+v, meta %v, calls %v", res, f.meta, f.calls)
		}
	})
	t.Run("promoted without force: the carried record stays", func(t *testing.T) {
		for _, force := range []bool{false, true} { // a forced failover whose peer demoted in time promotes without force
			f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, meta: map[string]string{failover.PromotedAt: "2026-11-01T00:00:00Z"}}
			o, _ := opts()
			o.Force = force
			res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
			if res.Err != nil || res.Action != "promoted" || f.count("set meta") != 0 || f.meta[failover.PromotedAt] != "2026-11-01T00:00:00Z" {
				t.Errorf("force %t: %+v, meta %v, calls %v", force, res, f.meta, f.calls)
			}
		}
	})
	t.Run("already primary: the time of the real promotion stays", func(t *testing.T) {
		f := &fake{primary: true, meta: map[string]string{failover.PromotedAt: "2026-11-01T00:00:00Z"}, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || f.count("set meta") != 0 || f.meta[failover.PromotedAt] != "2026-11-01T00:00:00Z" {
			t.Errorf("%+v, meta %v, calls %v", res, f.meta, f.calls)
		}
	})
	t.Run("the record fails once: retried", func(t *testing.T) {
		f, o := forced(errors.New("timed out"), nil)
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || f.count("set meta") != 2 || f.meta[failover.PromotedAt] != "2026-11-24T09:02:30Z" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the record keeps failing: the step fails and says the command", func(t *testing.T) {
		f, o := forced(errors.New("Operation not permitted"))
		o.Timeout = 30 * time.Second
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "promoted, but recording when (rbd image-meta set replicapool/img1 rbd-dr.io/promoted-at ") {
			t.Errorf("%+v", res)
		}
	})
}

// The failback shortcut: this site was force-promoted (it holds the newer
// data); the old site came back still primary, and git moved the app back
// to it without the resync. This site's demote must refuse, and change
// nothing; when the peer was promoted after this site (the lost site
// returning, the usual case), it demotes.
func TestDemoteRefusesAnOlderClaim(t *testing.T) {
	claims := func(t *testing.T) rbd.MirrorStatus { return status(t, "s5_b_back_both_primary", "a") }
	single := list(own(5, 1795511193, "primary", peerUUID))
	peerPrimary := [][]rbd.Snapshot{list(own(9, 1795512000, "primary"))}
	const forcedHere = "2026-11-24T09:00:00Z"
	cases := []struct {
		name     string
		own      string // "" for none
		peer     string
		peerRead bool // a peer reader is given
		demoted  bool
		why      string
	}{
		{"peer promoted before this site", forcedHere, "2026-11-20T12:00:00Z", true, false, "its copy was force-promoted at 2026-11-20T12:00:00Z, before this copy was (2026-11-24T09:00:00Z)"},
		{"peer never force-promoted by the tool", forcedHere, "", true, false, "its copy was never force-promoted by argocd-rbd-dr"},
		{"peer promoted after this site", forcedHere, "2026-11-24T09:01:00Z", true, true, "a forced failover: its own snapshots say so"},
		{"no record here (before the tool recorded it)", "", "2026-11-20T12:00:00Z", true, true, "a forced failover"},
		{"no peer reader: git decides", forcedHere, "2026-11-20T12:00:00Z", false, true, "rbd-dr.yaml says forcePromote: true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fake{primary: true, statuses: []rbd.MirrorStatus{claims(t)}, snaps: [][]rbd.Snapshot{single}, peerSnaps: peerPrimary,
				meta: map[string]string{}, peerMeta: map[string]string{}}
			if c.own != "" {
				f.meta[failover.PromotedAt] = c.own
			}
			if c.peer != "" {
				f.peerMeta[failover.PromotedAt] = c.peer
			}
			var p failover.Peer
			if c.peerRead {
				p = peer{f}
			}
			o, _ := opts()
			o.ForcePromoted = true
			res := only(t, failover.Demote(context.Background(), f, p, []rbd.Image{img}, o))
			text := res.Note
			if res.Err != nil {
				text = res.Err.Error()
			}
			if got := f.count("demote") == 1; got != c.demoted || (res.Err == nil) != c.demoted || !strings.Contains(text, c.why) {
				t.Errorf("demoted %t, want %t: %s; calls %v", got, c.demoted, text, f.calls)
			}
			if !c.demoted && (!strings.Contains(text, "set activeSite back to this site") || res.Took > time.Second) {
				t.Errorf("the refusal does not say the runbook, or waited (%s): %s", res.Took, text)
			}
		})
	}
}

// sideBySide is a fake whose stamp waits, for at most three seconds, until the
// lock's holder and two statuses (the rbd-mirror's and the peer's claim)
// have been read since the forced promote, and notes whether they were.
type sideBySide struct {
	*fake
	overlapped bool
}

func (f *sideBySide) SetMeta(ctx context.Context, img rbd.Image, key, value string) error {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && !f.overlapped; time.Sleep(time.Millisecond) {
		calls := f.snapshotCalls()
		after := calls[slices.Index(calls, "promote --force")+1:]
		f.overlapped = slices.Contains(after, "lockers") && strings.Count(strings.Join(after, " "), "status") >= 2
	}
	return f.fake.SetMeta(ctx, img, key, value)
}

func (f *sideBySide) snapshotCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// claimAfterForce: the peer's record says it is gone until this site's
// forced promote, and primary after it.
type claimAfterForce struct {
	*fake
	gone, claim rbd.MirrorStatus
}

func (f *claimAfterForce) MirrorStatus(context.Context, rbd.Image) (rbd.MirrorStatus, error) {
	f.record("status")
	if f.count("promote --force") > 0 {
		return f.claim, nil
	}
	return f.gone, nil
}

// After a forced promote, its stamp, the wait for this site's rbd-mirror to
// let go and the check that the peer is not primary run side by side, and
// a failure of one does not hide another's.
func TestForcedPromoteChecksSideBySide(t *testing.T) {
	peerDown := status(t, "s3_b_replaying", "b")
	peerDown.PeerSites[0].State = "down+stopped"
	t.Run("side by side", func(t *testing.T) {
		f := &sideBySide{fake: &fake{statuses: []rbd.MirrorStatus{peerDown}, promote: []error{notYet}}}
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" || f.count("set meta") != 1 {
			t.Fatalf("%+v, calls %v", res, f.calls)
		}
		if !f.overlapped {
			t.Errorf("the stamp was written before the lock's holder and the statuses after the promote were read; calls %v", f.calls)
		}
	})
	t.Run("the stamp fails and the peer claims primary: both said", func(t *testing.T) {
		f := &claimAfterForce{fake: &fake{promote: []error{notYet}, setMetaErr: []error{errors.New("Operation not permitted")}},
			gone: peerDown, claim: status(t, "s3_b_replaying", "b")} // site-a up again, "local image is primary"
		o, _ := opts()
		o.Force, o.Timeout = true, time.Minute
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "promoted, but recording when") || !strings.Contains(res.Err.Error(), "BOTH SITES CLAIM PRIMARY") {
			t.Errorf("%v; calls %v", res.Err, f.calls)
		}
	})
}
