package failover_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rbd-dr/argocd-rbd-dr/internal/rbdtest"
	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil/kubefake"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// One own snapshot: the links here cannot tell whether the peer completed it.
var single = list(own(5, 1795511193, "primary", peerUUID))

func TestDemote(t *testing.T) {
	t.Run("non-primary: nothing to do", func(t *testing.T) {
		f := &fake{primary: false, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "none" || f.count("demote") != 0 || res.Before != "non-primary" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the peer unlinked itself from the older snapshot it had copied: demote at once", func(t *testing.T) {
		// its record, lagging, still shows the older snapshot's copy
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{list(own(4, 1795511100, "primary"), own(5, 1795511193, "primary", peerUUID))},
			statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511100)}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "demoted" || res.After != "non-primary" || f.count("demote") != 1 || f.count("status") != 1 || res.Took != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	// The gap: the older snapshot was taken before the peer was added (or
	// re-bootstrapped), so it was never linked to it, and the links read
	// "caught up" while the peer's first copy is still running.
	t.Run("an older snapshot never linked to the peer: waits for a direct proof", func(t *testing.T) {
		snaps := [][]rbd.Snapshot{list(own(4, 1795511100, "primary"), own(5, 1795511193, "primary", peerUUID))}
		starting := status(t, "s3_b_replaying", "a")
		starting.PeerSites[0].Description = "starting replay"
		f := &fake{primary: true, snaps: snaps, statuses: []rbd.MirrorStatus{starting}}
		o, _ := opts()
		o.Timeout = 30 * time.Second
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || f.count("demote") != 0 {
			t.Errorf("demoted on the links alone: %+v, calls %v", res, f.calls)
		}
		// A record of a copy older than that snapshot proves nothing either.
		f = &fake{primary: true, snaps: snaps, statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511000)}}
		if res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o)); res.Err == nil || f.count("demote") != 0 {
			t.Errorf("demoted on an older copy's record: %+v, calls %v", res, f.calls)
		}
		// The peer's own list, once it holds the complete copy, does.
		f = &fake{primary: true, snaps: snaps, statuses: []rbd.MirrorStatus{starting},
			peerSnaps: [][]rbd.Snapshot{list(copied(8, 5, "non-primary", false, 3)), list(copied(8, 5, "non-primary", true, 16))}}
		res = only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || f.count("demote") != 1 || !strings.Contains(res.Note, "the peer holds a complete copy of snapshot 5") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the peer still linked to the older snapshot: a record saying it copied is not believed", func(t *testing.T) {
		behind := list(own(4, 1, "primary", peerUUID), own(5, 1795511193, "primary", peerUUID))
		caughtUp := list(own(4, 1, "primary"), own(5, 1795511193, "primary", peerUUID))
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{behind, behind, behind, caughtUp}, statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511193)}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || f.count("demote") != 1 || f.count("snaps") != 4 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		// a copy in flight is polled fast
		if res.Took != 3*failover.DefaultPoll {
			t.Errorf("took %s, want 3 polls of %s", res.Took, failover.DefaultPoll)
		}
	})
	t.Run("the peer's own list shows the copy completing: demote once complete", func(t *testing.T) {
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{single},
			peerSnaps: [][]rbd.Snapshot{list(copied(7, 4, "non-primary", true, 16)), list(copied(7, 4, "non-primary", true, 16), copied(8, 5, "non-primary", false, 3)),
				list(copied(7, 4, "non-primary", true, 16), copied(8, 5, "non-primary", true, 16))},
			statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511000)}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || f.count("demote") != 1 || f.count("peer snaps") != 3 || !strings.Contains(res.Note, "complete copy of snapshot 5") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		// not yet started: back off once; copying: poll fast
		if res.Took != 2*failover.DefaultPoll {
			t.Errorf("took %s", res.Took)
		}
	})
	t.Run("a complete copy of an older snapshot, a partial one of the newest: never demotes", func(t *testing.T) {
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{single},
			peerSnaps: [][]rbd.Snapshot{list(copied(7, 4, "non-primary", true, 16), copied(8, 5, "non-primary", false, 3))},
			statuses:  []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511000)}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "peer site-b is still copying snapshot 5") || f.count("demote") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the peer cannot be read: the status decides", func(t *testing.T) {
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{single}, peerErr: errors.New("rbd: couldn't connect to the cluster!"),
			statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511000), primaryWithPeerAt(t, 1795511193)}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || f.count("demote") != 1 || !strings.Contains(res.Note, "reports snapshot 5 replayed") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the record shows the copy: a step of more than SnapWatch images does not read the peer's lists", func(t *testing.T) {
		for n := 1; n <= failover.DefaultSnapWatch+1; n++ {
			f := &fake{primary: true, snaps: [][]rbd.Snapshot{single}, statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511193)},
				peerSnaps: [][]rbd.Snapshot{list(copied(8, 5, "non-primary", true, 16))}}
			o, _ := opts()
			var images []rbd.Image
			for i := range n {
				images = append(images, rbd.Image{Pool: "replicapool", Name: fmt.Sprintf("img%d", i)})
			}
			want, note := n, "the peer holds a complete copy of snapshot 5"
			if n > failover.DefaultSnapWatch {
				want, note = 0, "reports snapshot 5 replayed"
			}
			for _, res := range failover.Demote(context.Background(), f, peer{f}, images, o) {
				if res.Err != nil || res.Action != "demoted" || !strings.Contains(res.Note, note) {
					t.Errorf("%d images: %+v", n, res)
				}
			}
			if f.count("peer snaps") != want || f.count("demote") != n {
				t.Errorf("%d images: calls %v", n, f.calls)
			}
			// a small step whose peer list proves the copy reads no status
			if n <= failover.DefaultSnapWatch && f.count("status") != 0 {
				t.Errorf("%d images: the status was read beside the proving list: calls %v", n, f.calls)
			}
		}
	})
	t.Run("a step of more than SnapWatch images: while the peer is linked to the older snapshot, the record is not believed", func(t *testing.T) {
		behind := list(own(4, 1, "primary", peerUUID), own(5, 1795511193, "primary", peerUUID))
		caughtUp := list(own(4, 1, "primary"), own(5, 1795511193, "primary", peerUUID))
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{behind, behind, behind, behind, caughtUp}, statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511193)}}
		o, _ := opts()
		images := []rbd.Image{{Pool: "replicapool", Name: "a"}, {Pool: "replicapool", Name: "b"}, {Pool: "replicapool", Name: "c"}}
		for _, res := range failover.Demote(context.Background(), f, nil, images, o) {
			if res.Err != nil || res.Action != "demoted" || !strings.Contains(res.Note, "unlinked itself") {
				t.Errorf("demoted on the record while the links said the copy runs: %+v", res)
			}
		}
	})
	t.Run("a copy from the peer in the same second does not void the record", func(t *testing.T) {
		// only own snapshots are what the peer's record names
		cp := copied(3, 2, "non-primary", true, 16)
		cp.Timestamp.Time = time.Unix(1795511193, 0).UTC()
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{list(cp, own(5, 1795511193, "primary"))}, statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511193)},
			peerSnaps: [][]rbd.Snapshot{list(copied(8, 5, "non-primary", true, 16))}}
		o, _ := opts()
		images := []rbd.Image{{Pool: "replicapool", Name: "a"}, {Pool: "replicapool", Name: "b"}, {Pool: "replicapool", Name: "c"}}
		for _, res := range failover.Demote(context.Background(), f, peer{f}, images, o) {
			if res.Err != nil || !strings.Contains(res.Note, "reports snapshot 5 replayed") {
				t.Errorf("%+v", res)
			}
		}
		if f.count("peer snaps") != 0 {
			t.Errorf("calls %v", f.calls)
		}
	})
	t.Run("another own snapshot of the same second: the record proves nothing, the peer's list decides", func(t *testing.T) {
		// the record names snapshots by the second: it may show snapshot 4's copy
		twins := list(own(4, 1795511193, "primary"), own(5, 1795511193, "primary"))
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{twins}, statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511193)}}
		o, _ := opts()
		o.Timeout = 30 * time.Second
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || f.count("demote") != 0 {
			t.Errorf("demoted on a record that may name the older twin: %+v, calls %v", res, f.calls)
		}
		f = &fake{primary: true, snaps: [][]rbd.Snapshot{twins}, statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511193)},
			peerSnaps: [][]rbd.Snapshot{list(copied(7, 4, "non-primary", true, 16), copied(8, 5, "non-primary", true, 16))}}
		res = only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || f.count("demote") != 1 || !strings.Contains(res.Note, "the peer holds a complete copy of snapshot 5") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("no peer connection, status behind: looks often while the peer's daemon is up", func(t *testing.T) {
		behind := primaryWithPeerAt(t, 1795511000)
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{single}, statuses: []rbd.MirrorStatus{behind, behind, behind, primaryWithPeerAt(t, 1795511193)}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || f.count("demote") != 1 || f.count("status") != 4 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if want := 3 * failover.DefaultPoll; res.Took != want {
			t.Errorf("took %s, want %s", res.Took, want)
		}
	})
	t.Run("status behind for good: fast for the stall time, then backing off", func(t *testing.T) {
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{single}, statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511000)}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || f.count("demote") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		// checks every 0.2 s from 0 to 9.8 s (50), at 10 s the stall time is
		// over: then at 10.2, 10.6, 11.4, 13, 16.2 s and every 4 s until the
		// 2-minute budget ends (20.2 ... 116.2 s, and 120 s)
		if n, want := f.count("status"), 50+1+5+25+1; n != want {
			t.Errorf("%d checks in %s, want %d", n, o.Timeout, want)
		}
	})
	t.Run("peer rbd-mirror down: never demotes, fails at the timeout", func(t *testing.T) {
		st := status(t, "s3_b_replaying", "a")
		st.PeerSites[0].State = "down+stopped"
		// the peer's link on the older snapshot stays: the copy is not moving
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{st}, snaps: [][]rbd.Snapshot{list(own(4, 1, "primary", peerUUID), own(5, 1795511193, "primary", peerUUID))}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "peer site-b reports down+stopped") || f.count("demote") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if n := f.count("snaps"); n > 40 {
			t.Errorf("%d checks in %s: a stuck peer must be polled with back-off", n, o.Timeout)
		}
	})
	t.Run("no peer site reports the image: never demotes", func(t *testing.T) {
		st := status(t, "s3_b_replaying", "a")
		st.PeerSites = nil
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{st}, snaps: [][]rbd.Snapshot{single}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "no peer site reports this image") || f.count("demote") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("no mirror snapshot: never demotes", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s5_b_back_both_primary", "a")}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "no mirror snapshot yet") || f.count("demote") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the role is read from the snapshots: no rbd info", func(t *testing.T) {
		// the fake's rbd info would say the opposite of each list
		for _, c := range []struct {
			snaps   []rbd.Snapshot
			primary bool
			action  string
		}{
			{list(own(4, 1795511100, "primary"), own(5, 1795511193, "primary", peerUUID)), false, "demoted"},
			{list(own(4, 1, "primary"), copied(7, 6, "non-primary", true, 16)), true, "none"},
			{list(own(4, 1, "demoted", peerUUID)), true, "none"},
		} {
			f := &fake{primary: c.primary, snaps: [][]rbd.Snapshot{c.snaps}, statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511100)}}
			o, _ := opts()
			res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
			if res.Err != nil || res.Action != c.action || f.count("info") != 0 {
				t.Errorf("%+v, calls %v", res, f.calls)
			}
		}
	})
	// The peer's record says "local image is primary" (the return of the
	// lost site, or a record that has not caught up with the peer's
	// demotion: s9_demoted_stale_primary).
	claims := func(t *testing.T) rbd.MirrorStatus { return status(t, "s5_b_back_both_primary", "a") }
	t.Run("stale primary after a forced failover in git: demote at once on the claim", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{claims(t)}, snaps: [][]rbd.Snapshot{single}}
		o, _ := opts()
		o.ForcePromoted = true
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || f.count("demote") != 1 || !strings.Contains(res.Note, "peer site-b is primary (a forced failover: rbd-dr.yaml says forcePromote: true)") || res.Took != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the claim alone, no forced failover in git: never demotes on it", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{claims(t)}, snaps: [][]rbd.Snapshot{single}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || f.count("demote") != 0 || !strings.Contains(res.Err.Error(), `"local image is primary", but nothing confirms it: that record lags a demotion`) {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the claim alone, the record catches up with the peer's copy: demotes on the copy", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{claims(t), claims(t), primaryWithPeerAt(t, 1795511193)}, snaps: [][]rbd.Snapshot{single}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || f.count("demote") != 1 || !strings.Contains(res.Note, "reports snapshot 5 replayed") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		// the peer's daemon is up: polled fast
		if res.Took != 2*failover.DefaultPoll {
			t.Errorf("took %s", res.Took)
		}
	})
	t.Run("the claim, the peer's snapshots say primary: demote at once, git or not", func(t *testing.T) {
		for _, gitSaysForced := range []bool{false, true} {
			f := &fake{primary: true, statuses: []rbd.MirrorStatus{claims(t)}, snaps: [][]rbd.Snapshot{single},
				peerSnaps: [][]rbd.Snapshot{list(copied(7, 4, "non-primary", true, 16), own(9, 1795512000, "primary"))}}
			o, _ := opts()
			o.ForcePromoted = gitSaysForced
			res := only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
			if res.Err != nil || f.count("demote") != 1 || !strings.Contains(res.Note, "a forced failover: its own snapshots say so") {
				t.Errorf("git says forced %t: %+v, calls %v", gitSaysForced, res, f.calls)
			}
		}
	})
	t.Run("the claim, the peer's snapshots say demoted: a stale record, waits for the copy even with git's word", func(t *testing.T) {
		// the lab's failure: the peer demoted and its rbd-mirror has not
		// yet copied this primary's snapshot 5
		demoted := list(copied(7, 4, "non-primary", true, 16), own(8, 1795511100, "demoted"))
		withCopy := list(copied(7, 4, "non-primary", true, 16), own(8, 1795511100, "demoted"), copied(9, 5, "non-primary", true, 16))
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{claims(t)}, snaps: [][]rbd.Snapshot{single},
			peerSnaps: [][]rbd.Snapshot{demoted, demoted, demoted, withCopy}}
		o, _ := opts()
		o.ForcePromoted = true
		res := only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || f.count("demote") != 1 || f.count("peer snaps") != 4 || !strings.Contains(res.Note, "complete copy of snapshot 5") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		f = &fake{primary: true, statuses: []rbd.MirrorStatus{claims(t)}, snaps: [][]rbd.Snapshot{single}, peerSnaps: [][]rbd.Snapshot{demoted}}
		res = only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err == nil || f.count("demote") != 0 || !strings.Contains(res.Err.Error(), "its own snapshots say it is not primary: the record is stale") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the claim, the peer unreadable: git's word decides", func(t *testing.T) {
		for _, gitSaysForced := range []bool{false, true} {
			f := &fake{primary: true, statuses: []rbd.MirrorStatus{claims(t)}, snaps: [][]rbd.Snapshot{single},
				peerSnaps: [][]rbd.Snapshot{list(own(8, 1795511100, "demoted"))}, peerErr: errors.New("rbd: couldn't connect to the cluster!")}
			o, _ := opts()
			o.ForcePromoted = gitSaysForced
			res := only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
			if demoted := f.count("demote") == 1; demoted != gitSaysForced || (res.Err == nil) != gitSaysForced {
				t.Errorf("git says forced %t: %+v, calls %v", gitSaysForced, res, f.calls)
			}
		}
	})
	t.Run("the claim, the peer has no mirror snapshot: git's word decides", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{claims(t)}, snaps: [][]rbd.Snapshot{single}, peerSnaps: [][]rbd.Snapshot{nil}}
		o, _ := opts()
		o.ForcePromoted = true
		res := only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || f.count("demote") != 1 || !strings.Contains(res.Note, "rbd-dr.yaml says forcePromote: true") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

// The demote of a planned relocation as recorded: site-b had completed its
// copy of site-a's newest snapshot and unlinked itself from the older one,
// whose copy its record shows.
func TestDemoteOnRecordedRelocation(t *testing.T) {
	l := lab(t, map[string][]string{
		"info":                {"s1_replaying.site-a.info"},
		"snap ls":             {"s1_replaying.site-a.snaps"},
		"mirror image status": {"s1_replaying.site-a.status"},
		"mirror image demote": {"s2_demote_a"},
	})
	o, _ := opts()
	res := only(t, failover.Demote(context.Background(), &rbd.Client{Runner: l}, nil, []rbd.Image{img}, o))
	if res.Err != nil || res.Action != "demoted" || l.Count("mirror image demote") != 1 || l.Count("mirror image status") != 1 {
		t.Errorf("%+v, calls %v", res, l.Calls())
	}
}

// A recorded stale claim: right after site-a demoted (s9_demoted_stale_primary),
// site-b's status still says site-a's image is primary, while site-a's own
// snapshots already say demoted. A demote on site-b, whose newest snapshot
// site-a never copied, must not take that record for a forced failover, even
// with git's word: the peer's snapshots settle it. With site-b's own snapshots
// saying primary in their stead, the same record is believed.
func TestDemoteOnRecordedStaleClaim(t *testing.T) {
	siteB := func() *rbdtest.Replay {
		return lab(t, map[string][]string{
			"snap ls":             {"s9_demoted_stale_primary.site-b.snaps"},
			"mirror image status": {"s9_demoted_stale_primary.site-b.status"},
			"mirror image demote": {"s8_demote_a"},
		})
	}
	for _, c := range []struct {
		peerSnaps string
		demoted   bool
		why       string
	}{
		{"s9_demoted_stale_primary.site-a.snaps", false, "its own snapshots say it is not primary: the record is stale"},
		{"s8_both_primary_settled.site-a.snaps", true, "a forced failover: its own snapshots say so"},
	} {
		l := siteB()
		peerSite := &rbd.Client{Runner: lab(t, map[string][]string{"snap ls": {c.peerSnaps}})}
		o, _ := opts()
		o.ForcePromoted, o.Timeout = true, 20*time.Second
		res := only(t, failover.Demote(context.Background(), &rbd.Client{Runner: l}, peerSite, []rbd.Image{img}, o))
		text := res.Note
		if res.Err != nil {
			text = res.Err.Error()
		}
		if got := l.Count("mirror image demote") == 1; got != c.demoted || !strings.Contains(text, c.why) {
			t.Errorf("peer %s: %+v, calls %v", c.peerSnaps, res, l.Calls())
		}
	}
}

// A step that asks the status before the peer's list (more than SnapWatch
// images, or no peer reader) reads it beside its own list, and judges the
// links and the record of a round on one read; a small step with a peer
// reader asks the peer first and reads no status it does not need.
func TestDemoteReadsTheStatusOnceARound(t *testing.T) {
	unproven := func() *fake {
		// links caught up, the record older than the older snapshot: only
		// the peer's own list proves the copy
		return &fake{primary: true, snaps: [][]rbd.Snapshot{list(own(4, 1795511100, "primary"), own(5, 1795511193, "primary", peerUUID))},
			statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511000)}, peerSnaps: [][]rbd.Snapshot{list(copied(8, 5, "non-primary", true, 16))}}
	}
	t.Run("a large step: one status read for the links and the record, then the peer", func(t *testing.T) {
		f := unproven()
		o, _ := opts()
		o.SnapWatch = -1 // a step larger than the snapshot watch
		res := only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "demoted" || !strings.Contains(res.Note, "the peer holds a complete copy of snapshot 5") ||
			f.count("status") != 1 || f.count("peer snaps") != 1 || slices.Index(f.calls, "status") > slices.Index(f.calls, "peer snaps") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("a small step with a peer reader: the peer first, no status", func(t *testing.T) {
		f := unproven()
		// still linked to the older snapshot: the links prove nothing,
		// and ask no status either
		f.snaps = [][]rbd.Snapshot{list(own(4, 1795511100, "primary", peerUUID), own(5, 1795511193, "primary", peerUUID))}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "demoted" || f.count("status") != 0 || f.count("peer snaps") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("a large step on a non-primary image: the status was read beside the list", func(t *testing.T) {
		f := &fake{primary: false, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}}
		o, _ := opts()
		o.SnapWatch = -1
		res := only(t, failover.Demote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "none" || f.count("status") != 1 || f.count("peer snaps") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

// The demote never acts while a pod mounts the image's volume, whatever
// order Argo CD ran the hooks in (a stale quiesce counted as done).
func TestDemoteWaitsForThePodsToGo(t *testing.T) {
	ready := func() *fake {
		return &fake{primary: true, snaps: [][]rbd.Snapshot{list(own(4, 1795511100, "primary"), own(5, 1795511193, "primary", peerUUID))},
			statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511100)}}
	}
	// inUse answers each check with the next list of pods, keeping the last.
	inUse := func(f *fake, answers ...[]string) func(context.Context, rbd.Image) ([]string, error) {
		return func(_ context.Context, got rbd.Image) ([]string, error) {
			if got != img {
				t.Errorf("asked about %s", got)
			}
			f.record("pods")
			if f.count("demote") > 0 {
				t.Error("pods checked after the demote")
			}
			return next(&answers), nil
		}
	}
	t.Run("pods still stopping: demotes once they are gone", func(t *testing.T) {
		f := ready()
		o, _ := opts()
		o.InUse = inUse(f, []string{"web-0"}, []string{"web-0"}, nil)
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		// checks at 0, 0.2 and 0.6 s (back-off); the status read beside
		// the list is that old by then, and read again
		if res.Err != nil || res.Action != "demoted" || f.count("demote") != 1 || f.count("pods") != 3 || res.Took != 3*failover.DefaultPoll || f.count("status") != 2 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("no pod mounts it: demotes at once, on the status read beside the list", func(t *testing.T) {
		f := ready()
		o, _ := opts()
		o.InUse = inUse(f, nil)
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "demoted" || f.count("pods") != 1 || f.count("status") != 1 || res.Took != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("a pod that never goes: not demoted, the pod named", func(t *testing.T) {
		f := ready()
		o, _ := opts()
		o.InUse = inUse(f, []string{"web-0", "backup-x1"})
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || f.count("demote") != 0 || !strings.Contains(res.Err.Error(), "pods still mount its volume (web-0, backup-x1)") || res.After != "primary" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the pods cannot be listed: not demoted", func(t *testing.T) {
		f := ready()
		o, _ := opts()
		o.InUse = func(context.Context, rbd.Image) ([]string, error) {
			return nil, errors.New(`pods is forbidden: User "system:serviceaccount:shop:x" cannot list resource "pods"`)
		}
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || f.count("demote") != 0 || !strings.HasPrefix(res.Err.Error(), "not demoted: finding the pods that mount its volume failed, and an image is never demoted under a running pod: pods is forbidden") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("already non-primary: the pods are not looked at", func(t *testing.T) {
		f := &fake{primary: false, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}}
		o, _ := opts()
		o.InUse = inUse(f, []string{"web-0"})
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "none" || f.count("pods") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestPodsMounting(t *testing.T) {
	kube := kubefake.Cluster(t,
		pod("web-0", "data", "web", corev1.PodRunning), pod("web-1", "data", "web", corev1.PodPending),
		pod("old-job", "logs", "job", corev1.PodSucceeded), pod("other-0", "unrelated", "other", corev1.PodRunning),
	)
	logs := rbd.Image{Pool: "replicapool", Name: "img2"}
	inUse := failover.PodsMounting(kube, "shop", map[string]string{img.String(): "data", logs.String(): "logs"})
	if pods, err := inUse(context.Background(), img); err != nil || !slices.Equal(pods, []string{"web-0", "web-1"}) {
		t.Errorf("data: %v %v", pods, err)
	}
	if pods, err := inUse(context.Background(), logs); err != nil || len(pods) != 0 {
		t.Errorf("logs (only a finished pod): %v %v", pods, err)
	}
	other := rbd.Image{Pool: "replicapool", Name: "nope"}
	if _, err := inUse(context.Background(), other); err == nil || !strings.Contains(err.Error(), "no PVC was given for replicapool/nope") {
		t.Errorf("an image without a claim: %v", err)
	}
}

// asking is a cluster whose status reads can be asked ahead (as
// rbd.Batched's): it records each image's ask, read and list in order.
type asking struct {
	fake
	seq map[string][]string
}

func (a *asking) note(img rbd.Image, what string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq[img.Name] = append(a.seq[img.Name], what)
}

func (a *asking) AskStatus(ctx context.Context, img rbd.Image) func() (rbd.MirrorStatus, error) {
	a.note(img, "ask")
	return func() (rbd.MirrorStatus, error) {
		a.note(img, "answer")
		return a.fake.MirrorStatus(ctx, img)
	}
}

func (a *asking) Snapshots(ctx context.Context, img rbd.Image) ([]rbd.Snapshot, error) {
	a.note(img, "list")
	return a.fake.Snapshots(ctx, img)
}

// A step that reads the shared status first (more than SnapWatch images)
// asks for each image's status before that image's first list, in the
// image's own goroutine: the ask joins the shared read at once, where one
// made from a goroutine of its own came after twenty lists had started.
func TestDemoteAsksForTheStatusBeforeItsFirstList(t *testing.T) {
	a := &asking{fake: fake{statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511278)}, snaps: [][]rbd.Snapshot{list(own(9, 1795511278, "primary", "peer"))}},
		seq: map[string][]string{}}
	o, _ := opts()
	var step []rbd.Image
	for i := range 3 {
		step = append(step, rbd.Image{Pool: "replicapool", Name: fmt.Sprintf("img%d", i)})
	}
	failover.Demote(context.Background(), a, nil, step, o)
	for _, img := range step {
		if seq := a.seq[img.Name]; len(seq) < 2 || seq[0] != "ask" || seq[1] != "list" {
			t.Errorf("%s: %v, want the ask first, then the list", img.Name, seq)
		}
	}
}
