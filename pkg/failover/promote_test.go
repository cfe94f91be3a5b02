package failover_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	log "github.com/sirupsen/logrus"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

func TestPromoteWithoutForce(t *testing.T) {
	demotedCopy := func(complete bool, object uint64) []rbd.Snapshot {
		return list(copied(7, 6, "non-primary", true, 16), copied(9, 8, "demoted", complete, object))
	}
	peerPrimary := list(copied(7, 6, "non-primary", true, 16))
	t.Run("polls fast while the demotion arrives; no promote until its copy is complete", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet, notYet, nil},
			snaps: [][]rbd.Snapshot{demotedCopy(false, 3), demotedCopy(false, 9), demotedCopy(true, 16)}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || res.After != "primary" || f.count("promote") != 3 || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		// two polls of the partial copy, then exit 16 twice (and exit 30 in
		// the lab) right after it completed
		if res.Took != 4*failover.DefaultPoll {
			t.Errorf("took %s, want 4 polls of %s", res.Took, failover.DefaultPoll)
		}
	})
	t.Run("peer has demoted, its demotion not here yet: looks again every Poll", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet, notYet, notYet, nil},
			snaps: [][]rbd.Snapshot{peerPrimary, peerPrimary, peerPrimary, demotedCopy(true, 16)}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || res.Took != 3*failover.DefaultPoll {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("peer has demoted, its demotion never arrives: fast for the stall time only", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet}, snaps: [][]rbd.Snapshot{peerPrimary}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "set forcePromote: true") || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if n, fastTries := f.count("promote"), int(failover.DefaultStall/failover.DefaultPoll); n < fastTries || n > fastTries+40 {
			t.Errorf("%d tries in %s, want %d fast ones, then about one per %s", n, o.Timeout, fastTries, failover.DefaultPollCap)
		}
	})
	t.Run("a larger step waits on the shared status alone while the peer claims primary: no list, no promote until it shows the demotion", func(t *testing.T) {
		primaryThere := status(t, "s3_b_replaying", "b")
		statuses := []rbd.MirrorStatus{}
		for range 10 {
			statuses = append(statuses, primaryThere)
		}
		f := &fake{statuses: append(statuses, status(t, "s4_b_sees_demoted", "b")), promote: []error{nil},
			snaps: [][]rbd.Snapshot{demotedCopy(true, 16)}}
		o, _ := opts()
		o.SnapWatch = -1 // a step larger than the snapshot watch
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		// the status every 0.2 s; the 11th read, at 2 s, shows the
		// demotion replayed here, and the promote follows in that round
		// without a list: the report was written during the wait
		if want := 10 * failover.DefaultPoll; res.Took != want {
			t.Errorf("took %s, want %s (the demotion acted on as soon as the status shows it)", res.Took, want)
		}
		if i := slices.Index(f.calls, "promote"); i != 11 || f.count("snaps") != 0 || f.count("promote") != 1 || res.After != "primary" {
			t.Errorf("want 11 status reads, then one promote and no list; %+v, calls %v", res, f.calls)
		}
	})
	t.Run("a larger step waits on the shared status while the peer's demotion is copied here after its claim is gone, for at most Stall", func(t *testing.T) {
		claimed := status(t, "s3_b_replaying", "b")
		// Ceph 16.2 and 18.2 can drop the claim before this site's
		// rbd-mirror reports the copy done (s3_demote_replayed_early).
		copying := status(t, "s3_b_replaying", "b")
		copying.PeerSites = slices.Clone(copying.PeerSites)
		copying.PeerSites[0].State, copying.PeerSites[0].Description = "up+unknown", "remote image is not primary"
		f := &fake{statuses: []rbd.MirrorStatus{claimed, claimed, copying, copying, copying, status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}}
		o, _ := opts()
		o.SnapWatch = -1
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || res.Took != 5*failover.DefaultPoll || f.count("snaps") != 0 {
			t.Errorf("want 6 status reads, one a Poll, then the promote; %+v, calls %v", res, f.calls)
		}
		f = &fake{statuses: []rbd.MirrorStatus{claimed, copying}, promote: []error{nil}, snaps: [][]rbd.Snapshot{demotedCopy(true, 16)}}
		res = only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		// the claim seen gone at the 2nd read; Stall later the full checks
		if want := 1 + int(failover.DefaultStall/failover.DefaultPoll) + 1; res.Err != nil || slices.Index(f.calls, "snaps") != want {
			t.Errorf("want the list after %d status reads; %+v, calls %v", want, res, f.calls)
		}
	})
	t.Run("a replayed demotion while the peer's record still claims primary: after the promote the peer's own snapshots and a new status read side by side", func(t *testing.T) {
		// Ceph 20.2: this site's report comes before the end of the
		// peer's claim, which can end while the promote runs or a second
		// after it.
		replayedClaimed := status(t, "s4_b_sees_demoted", "b")
		replayedClaimed.PeerSites = status(t, "s3_b_replaying", "b").PeerSites
		peerDemoted := list(own(8, 1795511190, "primary"), own(9, 1795511200, "demoted", peerUUID))
		t.Run("the new read finds the claim gone: it settles it, and the peer's list is cancelled", func(t *testing.T) {
			f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b"), replayedClaimed, status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}}
			o, _ := opts()
			o.SnapWatch = -1
			res := only(t, failover.Promote(context.Background(), f, stuckPeer{f}, []rbd.Image{img}, o))
			if res.Err != nil || res.After != "primary" || strings.Contains(res.Note, "its own snapshots") || f.count("status") != 3 || f.count("peer cancelled") != 1 {
				t.Errorf("%+v, calls %v", res, f.calls)
			}
		})
		for _, c := range []struct {
			name      string
			peerSnaps []rbd.Snapshot
			wantErr   string
		}{
			{"still claimed, its own snapshots say it is not primary: checked", peerDemoted, ""},
			{"still claimed, they say nothing (no mirror snapshot): the status decides", list(), "BOTH SITES CLAIM PRIMARY"},
			{"still claimed, they say it is primary: both primary", list(own(8, 1795511190, "primary")), "BOTH SITES CLAIM PRIMARY"},
		} {
			f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b"), replayedClaimed}, promote: []error{nil}, peerSnaps: [][]rbd.Snapshot{c.peerSnaps}}
			o, _ := opts()
			o.SnapWatch, o.Timeout = -1, 20*time.Second
			res := only(t, failover.Promote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
			calls := slices.Clone(f.calls)
			if len(calls) < 5 || !slices.Equal(calls[:3], []string{"status", "status", "promote"}) || f.count("snaps") != 0 || f.count("promote") != 1 {
				t.Fatalf("%s: calls %v, want two status reads, the promote, then the status and the peer's list side by side", c.name, calls)
			}
			if side := slices.Sorted(slices.Values(calls[3:5])); !slices.Equal(side, []string{"peer snaps", "status"}) {
				t.Errorf("%s: after the promote %v, want the status and the peer's list", c.name, calls[3:5])
			}
			if c.wantErr == "" {
				if res.Err != nil || res.Before != "non-primary" || res.After != "primary" || !strings.Contains(res.Note, "its own snapshots say it is not") || len(calls) != 5 {
					t.Errorf("%s: %+v, calls %v", c.name, res, calls)
				}
				continue
			}
			if res.Err == nil || !strings.Contains(res.Err.Error(), c.wantErr) {
				t.Errorf("%s: %+v", c.name, res)
			}
		}
	})
	t.Run("a replayed demotion whose peer no longer claims primary: the usual check after the promote, no peer list", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b"), status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}}
		o, _ := opts()
		o.SnapWatch = -1
		res := only(t, failover.Promote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if want := []string{"status", "status", "promote", "status"}; res.Err != nil || !slices.Equal(f.calls, want) {
			t.Errorf("%+v, calls %v, want %v", res, f.calls, want)
		}
	})
	t.Run("a copy that stops replaying for any other reason is listed before a promote", func(t *testing.T) {
		// rbd-mirror killed mid-copy (16.2 and 18.2: down+ "status not
		// found"), stopped, or split-brain: only "remote image demoted"
		// says the demotion is here.
		notFound := status(t, "s3_b_replaying", "b")
		notFound.State, notFound.Description = "down+unknown", "status not found"
		stopped := status(t, "s3_b_replaying", "b")
		stopped.State, stopped.Description = "up+stopped", "stopped"
		for _, other := range []rbd.MirrorStatus{notFound, stopped, status(t, "s5_split_brain", "b")} {
			f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b"), other}, promote: []error{nil}, snaps: [][]rbd.Snapshot{demotedCopy(false, 3)}}
			o, _ := opts()
			o.SnapWatch, o.Timeout = -1, 5*time.Second
			failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o)
			if slices.Index(f.calls, "snaps") != 2 || f.count("promote") != 0 {
				t.Errorf("%s %q: want the list right after the two status reads and no promote of the partial copy; calls %v", other.State, other.Description, f.calls)
			}
		}
	})
	t.Run("a replayed demotion reported before the wait began is not taken at its word: the list decides", func(t *testing.T) {
		// The record is not rewritten when this site's role changes
		// (18.2: still there after a promote): here this site promoted
		// and demoted since, and its own demotion is its newest snapshot.
		ownDemotion := list(copied(7, 6, "non-primary", true, 16), own(9, 1795511200, "demoted", peerUUID))
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}, snaps: [][]rbd.Snapshot{ownDemotion}}
		o, _ := opts()
		o.SnapWatch, o.Timeout = -1, 5*time.Second
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || f.count("promote") != 0 || slices.Index(f.calls, "snaps") != 1 {
			t.Errorf("want the list right after the status and no promote undoing this site's own demotion; %+v, calls %v", res, f.calls)
		}
	})
	t.Run("a promote on the replayed demotion that Ceph refuses goes on to the full checks", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b"), status(t, "s4_b_sees_demoted", "b")},
			promote: []error{notYet, nil}, snaps: [][]rbd.Snapshot{demotedCopy(true, 16)}}
		o, _ := opts()
		o.SnapWatch = -1
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		want := []string{"status", "status", "promote", "snaps", "promote", "status"}
		if res.Err != nil || res.Action != "promoted" || !slices.Equal(f.calls, want) {
			t.Errorf("%+v, calls %v, want %v", res, f.calls, want)
		}
	})
	t.Run("the wait on the status ends after ClaimWatch; the full checks go on backing off", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}, promote: []error{notYet}, snaps: [][]rbd.Snapshot{peerPrimary}}
		o, _ := opts()
		o.SnapWatch = -1 // a step larger than the snapshot watch
		o.ClaimWatch = 30 * time.Second
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		// one read a Poll for Stall, then one a WatchPoll to 30 s, then
		// one per full check (about one per PollCap for the other 90 s)
		watched := int(failover.DefaultStall/failover.DefaultPoll + (o.ClaimWatch-failover.DefaultStall)/failover.DefaultWatchPoll)
		if n := f.count("status"); n < watched || n > watched+40 {
			t.Errorf("%d status reads in %s, want about %d in the watch, then one per %s", n, o.Timeout, watched, failover.DefaultPollCap)
		}
		// full checks only after the watch: about one per PollCap for 90 s
		if n := f.count("snaps"); n < 20 || n > 30 || f.count("promote") != 0 {
			t.Errorf("%d full checks and %d promotes in %s, want about one check per %s after the watch and no promote while the peer claims primary", n, f.count("promote"), o.Timeout, failover.DefaultPollCap)
		}
	})
	t.Run("a small step lists its snapshots in the watch: the demotion is acted on as it arrives, before the record says so", func(t *testing.T) {
		primaryThere := status(t, "s3_b_replaying", "b")
		statuses := []rbd.MirrorStatus{}
		for range 8 {
			statuses = append(statuses, primaryThere) // the record lags the demotion
		}
		f := &fake{statuses: append(statuses, status(t, "s4_b_sees_demoted", "b")), promote: []error{nil},
			snaps: [][]rbd.Snapshot{peerPrimary, peerPrimary, demotedCopy(true, 16)}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" {
			t.Fatalf("%+v, calls %v", res, f.calls)
		}
		// the split-brain check's read, full checks at 0 and 0.2 s; the
		// watch's list at 0.4 s shows the complete copy: promoted then,
		// with that list, while the record still says primary
		before := f.calls[:slices.Index(f.calls, "promote")]
		if n, m := countOf(before, "status"), countOf(before, "snaps"); n != 3 || m != 3 {
			t.Errorf("%d status reads and %d lists before the promote, want 3 and 3; calls %v", n, m, f.calls)
		}
	})
	t.Run("the watch lists the snapshots of one or two images, and reads only the shared status for more", func(t *testing.T) {
		for images := 1; images <= 3; images++ {
			f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}, snaps: [][]rbd.Snapshot{peerPrimary}}
			o, _ := opts()
			o.Timeout, o.Parallelism = 3*time.Second, 3
			var step []rbd.Image
			for i := range images {
				step = append(step, rbd.Image{Pool: "replicapool", Name: fmt.Sprintf("img%d", i)})
			}
			failover.Promote(context.Background(), f, nil, step, o)
			// a full check reads both; a watch round one or the other (the
			// fake's clock is shared by the images' goroutines, so how many
			// watch rounds fit between full checks varies: only which of
			// the two dominates is compared)
			lists, reads := f.count("snaps"), f.count("status")
			small := images <= failover.DefaultSnapWatch
			if small && lists <= reads || !small && lists >= reads || f.count("promote") != 0 {
				t.Errorf("%d images: %d lists, %d status reads and %d promotes; calls %v", images, lists, reads, f.count("promote"), f.calls)
			}
		}
	})
	t.Run("a status read that fails ends the wait on the status: the checks decide at once", func(t *testing.T) {
		primaryThere := status(t, "s3_b_replaying", "b")
		f := &statusErrAt{fake: fake{statuses: []rbd.MirrorStatus{primaryThere, primaryThere, primaryThere, primaryThere, status(t, "s4_b_sees_demoted", "b")},
			promote: []error{nil}, snaps: [][]rbd.Snapshot{demotedCopy(true, 16)}}, at: 4}
		o, _ := opts()
		o.SnapWatch = -1 // a step larger than the snapshot watch
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		// the status at 0, 0.2 and 0.4 s; the read at 0.6 s fails: the
		// list shows the demotion here, and the promote follows
		if res.Action != "promoted" || res.Took != 3*failover.DefaultPoll || f.count("promote") != 1 || slices.Index(f.calls, "snaps") != 4 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("peer never demotes: fails with what to do, never forces, checks seldom", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}, promote: []error{notYet}, snaps: [][]rbd.Snapshot{peerPrimary}}
		o, _ := opts()
		o.SnapWatch, o.ClaimWatch = -1, 30*time.Second // a larger step; full checks after the watch
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "set forcePromote: true") || !strings.Contains(res.Err.Error(), "its status record here says the peer's copy is primary") || f.count("promote --force") != 0 || res.After != "non-primary" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if n := f.count("snaps"); n < 20 || n > 30 || f.count("promote") != 0 {
			t.Errorf("%d checks and %d promotes in %s, want about one check per %s after the watch and no promote while the peer claims primary", n, f.count("promote"), o.Timeout, failover.DefaultPollCap)
		}
	})
	t.Run("a copy that stops moving is not waited for at full speed", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet}, snaps: [][]rbd.Snapshot{demotedCopy(false, 5)}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "stopped at object 5") || f.count("promote") != 0 || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if n := f.count("snaps"); n > int(failover.DefaultStall/failover.DefaultPoll)+40 {
			t.Errorf("%d checks: a stalled copy must be polled with back-off", n)
		}
	})
	t.Run("the fast poll ends exactly when the copy has not moved for the stall time", func(t *testing.T) {
		partial := make([][]rbd.Snapshot, 53)
		for i := range partial {
			partial[i] = demotedCopy(false, 5)
		}
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}, snaps: append(partial, demotedCopy(true, 16))}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		// 50 polls of 0.2 s reach the 10 s stall; then 0.2, 0.4 and 0.8 s
		if want := 11400 * time.Millisecond; res.Err != nil || res.Took != want || f.count("promote") != 1 {
			t.Errorf("%+v: took %s, want %s", res, res.Took, want)
		}
	})
	t.Run("a complete copy that promote keeps refusing is not retried at full speed", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet}, snaps: [][]rbd.Snapshot{demotedCopy(true, 16)}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "is complete here, yet Ceph still refuses") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if n := f.count("promote"); n > int(failover.DefaultStall/failover.DefaultPoll)+40 {
			t.Errorf("%d tries: a copy that does not help must be polled with back-off", n)
		}
	})
	ownDemoted := list(copied(7, 6, "non-primary", true, 16), own(8, 2, "demoted", peerUUID))
	t.Run("demoted here and nothing newer from the peer: no promote while the peer may take over", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}, snaps: [][]rbd.Snapshot{ownDemoted}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || f.count("promote") != 1 || res.Took < failover.DefaultNonForcedFirst || res.Took > failover.DefaultNonForcedFirst+failover.DefaultPollCap {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the own demotion is kept for exactly the non-forced period", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}, snaps: [][]rbd.Snapshot{ownDemoted}}
		o, _ := opts()
		// checks at 0, 0.2, 0.6, 1.4, 3.0, 6.2 s
		o.NonForcedFirst = 6200 * time.Millisecond
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Took != o.NonForcedFirst {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("demoted here, the peer's own snapshots say it was primary since: never undoes the demotion", func(t *testing.T) {
		// its newest is its own, primary now or demoted without this site
		// having its copy yet (the lab: a demote that took a stale claim)
		for _, state := range []string{"primary", "demoted"} {
			f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}, snaps: [][]rbd.Snapshot{ownDemoted},
				peerSnaps: [][]rbd.Snapshot{list(copied(10, 8, "non-primary", true, 16), own(11, 3, "primary"), own(12, 4, state))}}
			o, _ := opts()
			res := only(t, failover.Promote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
			if res.Err == nil || f.count("promote") != 0 || !strings.Contains(res.Err.Error(), "the peer has been primary since") {
				t.Errorf("peer %s: %+v, calls %v", state, res, f.calls)
			}
		}
	})
	t.Run("demoted here, the peer was primary since: promotes once its demotion arrives", func(t *testing.T) {
		withDemotion := append(ownDemoted, copied(13, 12, "demoted", true, 16))
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}, snaps: [][]rbd.Snapshot{ownDemoted, ownDemoted, withDemotion},
			peerSnaps: [][]rbd.Snapshot{list(own(11, 3, "primary"), own(12, 4, "demoted"))}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || f.count("promote") != 1 || f.count("peer snaps") < 2 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("demoted here, the peer holds that demotion and nothing newer: undone after the non-forced period", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}, snaps: [][]rbd.Snapshot{ownDemoted},
			peerSnaps: [][]rbd.Snapshot{list(own(5, 1, "demoted"), copied(14, 8, "demoted", true, 16))}}
		o, _ := opts()
		o.NonForcedFirst = 6200 * time.Millisecond
		res := only(t, failover.Promote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || res.Took != o.NonForcedFirst {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("demoted here, then the peer's promotion arrives: waits for its demotion", func(t *testing.T) {
		peerPromoted := append(ownDemoted, copied(9, 12, "non-primary", false, 3))
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet},
			snaps: [][]rbd.Snapshot{ownDemoted, peerPromoted}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "demotion is not propagated yet") || f.count("promote") == 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("a snapshot list that cannot be read: no promote is tried blind", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil}, snapsErr: errors.New("timed out")}
		o, logs := opts()
		o.Log.(*log.Logger).SetLevel(log.DebugLevel)
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "this site's snapshots could not be read, so no promote was tried: timed out") || f.count("promote") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if !strings.Contains(logs.String(), `msg="reading the snapshots here; no promote is tried without them" error="timed out"`) {
			t.Errorf("log:\n%s", logs)
		}
	})
	t.Run("already primary: nothing to do", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "none" || f.count("promote") != 0 || res.After != "primary" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the role is read from the snapshots: no rbd info", func(t *testing.T) {
		// the fake's rbd info would say non-primary
		f := &fake{snaps: [][]rbd.Snapshot{list(copied(7, 6, "non-primary", true, 16), own(8, 2, "primary"))}, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "none" || res.Before != "primary" || f.count("promote") != 0 || f.count("info") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("a failure that is not 'not yet' is not retried", func(t *testing.T) {
		f := &fake{promote: []error{&rbd.CmdError{ExitCode: 1, Stderr: "rbd: couldn't connect to the cluster!"}}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "couldn't connect") || f.count("promote") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

// statusErrAt is a fake whose at-th status read fails.
type statusErrAt struct {
	fake
	at, n int
}

func (f *statusErrAt) MirrorStatus(ctx context.Context, img rbd.Image) (rbd.MirrorStatus, error) {
	st, err := f.fake.MirrorStatus(ctx, img)
	if f.n++; f.n == f.at {
		return rbd.MirrorStatus{}, errors.New("rbd: mirror pool status: timed out")
	}
	return st, err
}

// The wait on the status alone (a step larger than the snapshot watch) is
// only for a copy that replays from a peer claiming primary: a copy that is
// primary here too, or a forced promote, goes to the checks at once (a
// forced one lists beside its first status read, in either order).
func TestPromoteWaitsOnTheStatusOnlyForAReplayingCopy(t *testing.T) {
	for _, c := range []struct {
		name  string
		f     *fake
		force bool
		lists []int // the calls that may be the first list
	}{
		{"primary here too", &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s5_b_back_both_primary", "a")}}, false, []int{1}},
		{"forced", &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}}, true, []int{0, 1}},
	} {
		o, _ := opts()
		o.SnapWatch, o.Force, o.Timeout = -1, c.force, 5*time.Second
		failover.Promote(context.Background(), c.f, nil, []rbd.Image{img}, o)
		if i := slices.Index(c.f.calls, "snaps"); !slices.Contains(c.lists, i) {
			t.Errorf("%s: the first list is call %d, want one of %v; calls %v", c.name, i, c.lists, c.f.calls)
		}
	}
}

func TestPromoteBothPrimaryFailsLoudly(t *testing.T) {
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s5_b_back_both_primary", "a")}}
	o, _ := opts()
	res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "BOTH SITES CLAIM PRIMARY: peer site-b") {
		t.Errorf("%+v", res)
	}
	if res.Took < failover.DefaultBothPrimaryGrace || res.Took > failover.DefaultBothPrimaryGrace+failover.DefaultPollCap {
		t.Errorf("failed after %s, want after the grace of %s", res.Took, failover.DefaultBothPrimaryGrace)
	}
	// A claim that goes away within the grace was a stale record; it is
	// looked at every Poll for the first Stall, then less often.
	claim := status(t, "s5_b_back_both_primary", "a")
	for claims, want := range map[int]time.Duration{3: 600 * time.Millisecond, 52: 10600 * time.Millisecond} {
		statuses := make([]rbd.MirrorStatus, claims)
		for i := range statuses {
			statuses[i] = claim
		}
		f = &fake{primary: true, statuses: append(statuses, status(t, "s3_b_replaying", "a"))}
		o, _ = opts()
		if res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o)); res.Err != nil || res.Took != want {
			t.Errorf("stale claim seen %d times: %+v, want it gone after %s", claims, res, want)
		}
	}
}

// With the peer's read-only user, a claim in the peer's status record is
// checked against the peer's own snapshots: a stale record (the peer demoted
// moments ago) ends the wait at once; a true claim does not.
func TestPromotePeerClaimCheckedAgainstItsSnapshots(t *testing.T) {
	claim := status(t, "s5_b_back_both_primary", "a")
	t.Run("the peer's snapshots say demoted: the claim is stale", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{claim}, peerSnaps: [][]rbd.Snapshot{list(copied(7, 6, "non-primary", true, 16), own(8, 2, "demoted", peerUUID))}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || res.Took != 0 || f.count("peer snaps") != 1 || !strings.Contains(res.Note, "its own snapshots say it is not") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the peer's snapshots say primary: fails loudly after the grace", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{claim}, peerSnaps: [][]rbd.Snapshot{list(own(8, 2, "demoted"), own(9, 3, "primary", peerUUID))}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "BOTH SITES CLAIM PRIMARY") || res.Took < failover.DefaultBothPrimaryGrace {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the peer cannot be read: the record decides", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{claim}, peerErr: errors.New("timed out")}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "BOTH SITES CLAIM PRIMARY") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("no claim: the peer is not read (a dead peer would hold the step)", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
		if res.Err != nil || f.count("peer snaps") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

// The peer's demotion arrived complete: that history has no split, and a
// status record saying split-brain is an old one.
func TestPromoteAfterTheDemotionArrivedSkipsTheSplitBrainRecord(t *testing.T) {
	f := &fake{statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b"), status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil},
		snaps: [][]rbd.Snapshot{list(copied(9, 8, "demoted", true, 16))}}
	o, _ := opts()
	res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
	if res.Err != nil || res.Action != "promoted" || f.count("promote") != 1 {
		t.Errorf("%+v, calls %v", res, f.calls)
	}
}

// A split-brain copy whose peer is not a healthy primary (here its daemon
// is down) has nothing to be resynced from: promote refuses it.
func TestPromoteRefusesSplitBrainWithoutForce(t *testing.T) {
	split := status(t, "s5_split_brain", "b")
	split.PeerSites[0].State = "down+stopped"
	f := &fake{statuses: []rbd.MirrorStatus{split}, promote: []error{nil}}
	o, _ := opts()
	res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "this copy is split-brain") || f.count("promote") != 0 || f.count("resync") != 0 {
		t.Errorf("%+v, calls %v", res, f.calls)
	}
}

// Promote does Prepare's work first (the rendered active site runs no
// prepare Job): a copy in error whose peer is a healthy primary is
// resynced from it and waited for, then promoted once the peer's demotion
// has arrived; the report says so. A copy without error costs no read
// more than promote's own.
func TestPromotePreparesFirst(t *testing.T) {
	t.Run("a split-brain copy with a healthy primary peer is resynced, then promoted", func(t *testing.T) {
		split := status(t, "s5_split_brain", "b")
		f := &fake{statuses: []rbd.MirrorStatus{split, split, status(t, "s5_resynced_replaying", "b"), status(t, "s4_b_sees_demoted", "b")},
			promote: []error{nil}, snaps: [][]rbd.Snapshot{list(copied(9, 8, "demoted", true, 16))}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || !strings.Contains(res.Note, "prepared first: resynced from the peer") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if r, p := slices.Index(f.calls, "resync"), slices.Index(f.calls, "promote"); r < 0 || p < r || f.count("resync") != 1 {
			t.Errorf("want one resync before the promote; calls %v", f.calls)
		}
	})
	t.Run("a resync that never replays fails the step before any promote", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b")}, promote: []error{nil}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "preparing it failed") || f.count("promote") != 0 || f.count("resync") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("a copy without error: the first status read is promote's too", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{nil},
			snaps: [][]rbd.Snapshot{list(copied(9, 8, "demoted", true, 16))}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || f.count("info") != 0 || f.calls[0] != "status" || f.calls[1] == "status" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

// The disaster as recorded: site-a dead seconds ago, its record still "up"
// and primary; site-b's non-forced promote answers exit 16. Without force
// nothing is forced; with it, nothing is forced either while the record
// says a live peer is primary.
func TestPromoteOnRecordedDisaster(t *testing.T) {
	for _, force := range []bool{false, true} {
		l := lab(t, map[string][]string{
			"info":                 {"s6_a_killed.site-b.info"},
			"mirror image status":  {"s6_a_killed.site-b.status"},
			"snap ls":              {"s6_a_killed.site-b.snaps"},
			"mirror image promote": {"s6_promote_b_peer_dead"},
		})
		o, _ := opts()
		o.Force = force
		res := only(t, failover.Promote(context.Background(), &rbd.Client{Runner: l}, nil, []rbd.Image{img}, o))
		want := map[bool]string{false: "set forcePromote: true", true: "reports itself primary"}[force]
		if res.Err == nil || !strings.Contains(res.Err.Error(), want) || l.Count("mirror image promote") != 0 || l.Count("mirror image promote --force") != 0 {
			t.Errorf("force %t: %+v, calls %v", force, res, l.Calls())
		}
	}
}

// A planned relocation as recorded: exit 16 and exit 30 while the demotion
// arrives (the demoted copy complete in site-b's list), then success.
func TestPromoteOnRecordedRelocation(t *testing.T) {
	l := lab(t, map[string][]string{
		"info":                 {"s2_demoted_not_replayed.site-b.info"},
		"mirror image status":  {"s3_demote_replayed.site-b.status", "s4_b_primary_replaying.site-b.status"},
		"snap ls":              {"s3_demote_replayed_early.site-b.snaps"},
		"mirror image promote": {"s5_promote_early_rc16", "s5_promote_early_rc30", "s3_promote_b"},
	})
	o, _ := opts()
	res := only(t, failover.Promote(context.Background(), &rbd.Client{Runner: l}, nil, []rbd.Image{img}, o))
	if res.Err != nil || res.Action != "promoted" || l.Count("mirror image promote") != 3 || res.Took != 2*failover.DefaultPoll {
		t.Errorf("%+v, calls %v", res, l.Calls())
	}
}

// The demotion cut by an rbd-mirror killed mid-copy, as recorded: site-b's
// copy of site-a's demote snapshot stopped at object 23 of 256, and Ceph
// accepted a non-forced promote of it there (exit 0). The step never asks.
func TestPromoteOnRecordedPartialDemoteCopy(t *testing.T) {
	l := lab(t, map[string][]string{
		"info":                 {"s5x_copy_partial_mirror_killed.site-b.info"},
		"mirror image status":  {"s5x_copy_partial_mirror_killed.site-b.status"},
		"snap ls":              {"s5x_copy_partial_mirror_killed.site-b.snaps"},
		"mirror image promote": {"s5x_promote_b_partial"},
	})
	o, _ := opts()
	res := only(t, failover.Promote(context.Background(), &rbd.Client{Runner: l}, nil, []rbd.Image{img}, o))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "stopped at object 23") || l.Count("mirror image promote") != 0 {
		t.Errorf("%+v, calls %v", res, l.Calls())
	}
}

// The same recorded moment from site-a: it has just demoted its stale
// primary, its demote snapshot is its newest, and site-b's own snapshots say
// site-b is primary. Ceph would let a non-forced promote on site-a undo the
// demotion; promote never tries, past the non-forced period too.
func TestPromoteOnRecordedOwnDemotionWhilePeerPrimary(t *testing.T) {
	l := lab(t, map[string][]string{
		"snap ls":             {"s9_demoted_stale_primary.site-a.snaps"},
		"mirror image status": {"s9_demoted_stale_primary.site-a.status"},
	})
	peerSite := &rbd.Client{Runner: lab(t, map[string][]string{"snap ls": {"s9_demoted_stale_primary.site-b.snaps"}})}
	o, _ := opts()
	o.Timeout, o.NonForcedFirst = 20*time.Second, time.Second
	res := only(t, failover.Promote(context.Background(), &rbd.Client{Runner: l}, peerSite, []rbd.Image{img}, o))
	if res.Err == nil || l.Count("mirror image promote") != 0 || !strings.Contains(res.Err.Error(), "the peer has been primary since") {
		t.Errorf("%+v, calls %v", res, l.Calls())
	}
}

func countOf(calls []string, call string) int {
	n := 0
	for _, c := range calls {
		if c == call {
			n++
		}
	}
	return n
}

// demotesAt is a peer that demotes at a given time on the step's clock: its
// status record here claims primary and this site's list shows no copy of
// its demotion before then, and after, the complete copy and the report.
// It records when each read was made.
type demotesAt struct {
	fake
	clock       *clock
	at          time.Time
	claim, seen rbd.MirrorStatus
	reads       []time.Time // the status reads and lists, in order
}

func (f *demotesAt) read() bool {
	now := f.clock.Now()
	f.mu.Lock()
	f.reads = append(f.reads, now)
	f.mu.Unlock()
	return !now.Before(f.at)
}

func (f *demotesAt) MirrorStatus(ctx context.Context, img rbd.Image) (rbd.MirrorStatus, error) {
	f.record("status")
	if f.read() {
		return f.seen, nil
	}
	return f.claim, nil
}

func (f *demotesAt) Snapshots(ctx context.Context, img rbd.Image) ([]rbd.Snapshot, error) {
	f.record("snaps")
	if f.read() {
		return list(copied(7, 6, "non-primary", true, 16), copied(9, 8, "demoted", true, 16)), nil
	}
	return list(copied(7, 6, "non-primary", true, 16)), nil
}

// The watch on the peer's claim reads every Poll for Stall, then every
// WatchPoll: a promote that waits long for the peer's app to stop costs
// an rbd call a second, not five, and still acts within a WatchPoll (and a
// Poll) of the demotion. Both watches: the status (a larger step) and the
// snapshot lists (one or two images).
func TestPromoteWatchSlowsAfterStall(t *testing.T) {
	for _, c := range []struct {
		name      string
		snapWatch int
	}{{"status watch", -1}, {"list watch", failover.DefaultSnapWatch}} {
		t.Run(c.name, func(t *testing.T) {
			o, _ := opts()
			clk := o.Clock.(*clock)
			start := clk.Now()
			demotion := start.Add(25*time.Second + 300*time.Millisecond)
			f := &demotesAt{fake: fake{promote: []error{nil}}, clock: clk, at: demotion,
				claim: status(t, "s3_b_replaying", "b"), seen: status(t, "s4_b_sees_demoted", "b")}
			o.SnapWatch = c.snapWatch
			res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
			if res.Err != nil || res.Action != "promoted" {
				t.Fatalf("%+v, calls %v", res, f.calls)
			}
			if late := res.Took - demotion.Sub(start); late < 0 || late > failover.DefaultWatchPoll+failover.DefaultPoll {
				t.Errorf("promoted %s after the demotion, want within %s", late, failover.DefaultWatchPoll+failover.DefaultPoll)
			}
			if c.snapWatch < 0 {
				// The status watch alone reads until the demotion: every Poll
				// until Stall, the first read at Stall skipped, then a read
				// each WatchPoll after the last.
				var around []time.Duration
				for _, r := range f.reads {
					if at := r.Sub(start); at >= failover.DefaultStall-2*failover.DefaultPoll && at < failover.DefaultStall+2*failover.DefaultWatchPoll {
						around = append(around, at)
					}
				}
				last := failover.DefaultStall - failover.DefaultPoll
				want := []time.Duration{last - failover.DefaultPoll, last, last + failover.DefaultWatchPoll, last + 2*failover.DefaultWatchPoll}
				if !slices.Equal(around, want) {
					t.Errorf("reads around the Stall at %v, want %v", around, want)
				}
			}
			early, slow := 0, 0 // reads in the first Stall, and in the 10 s before the demotion
			for _, r := range f.reads {
				switch at := r.Sub(start); {
				case at < failover.DefaultStall:
					early++
				case at >= 15*time.Second && r.Before(demotion):
					slow++
				}
			}
			if fast := int(failover.DefaultStall / failover.DefaultPoll); early < fast {
				t.Errorf("%d reads in the first %s, want one a Poll (%d) at least", early, failover.DefaultStall, fast)
			}
			// one a WatchPoll, and a full check (a list and a status read)
			// every PollCap
			if max := int(10*time.Second/failover.DefaultWatchPoll) + 2*int(10*time.Second/failover.DefaultPollCap+1); slow > max {
				t.Errorf("%d reads in the 10 s before the demotion, want at most %d: one a %s and the full checks'", slow, max, failover.DefaultWatchPoll)
			}
		})
	}
}
