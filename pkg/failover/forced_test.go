package failover_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

func TestPromoteForced(t *testing.T) {
	synced := copied(9, 5, "non-primary", true, 16)
	synced.Timestamp.Time = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	peerLists := [][]rbd.Snapshot{list(synced)}
	peerDown := status(t, "s3_b_replaying", "b")
	peerDown.PeerSites[0].State = "down+stopped"
	peerDeadNotExpired := status(t, "s3_b_replaying", "b")
	peerDeadNotExpired.PeerSites[0].State = "up+stopped" // "local image is primary"

	t.Run("peer gone (down+): forced at once, with the data's age and why", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{peerDown}, promote: []error{notYet}, snaps: peerLists}
		o, logs := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" || f.count("promote") != 1 || f.count("promote --force") != 1 || f.count("snaps") != 1 || res.Took != 0 {
			t.Fatalf("%+v, calls %v", res, f.calls)
		}
		if res.Note != "forced: data as of 2026-11-24T09:00:00Z (2m30s old, the last synced mirror snapshot)" {
			t.Errorf("note %q", res.Note)
		}
		if !strings.Contains(logs.String(), `forcing the promote: git says forcePromote: true and peer site-a is gone: its status is down+stopped`) {
			t.Errorf("the log does not say why force was safe:\n%s", logs)
		}
	})
	t.Run("peer dead but its watch not expired: waits for down+, then forces", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{peerDeadNotExpired, peerDeadNotExpired, peerDeadNotExpired, peerDeadNotExpired, peerDown}, promote: []error{notYet}, snaps: peerLists}
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		// full checks at 0, 0.2 and 0.6 s, the status alone at 0.4 and
		// 0.8 s, which shows down+: forced in that round, after the one
		// non-forced try (none while the record said primary)
		if res.Err != nil || res.Action != "force-promoted" || f.count("promote --force") != 1 || f.count("promote") != 1 || res.Took != 4*failover.DefaultPoll {
			t.Fatalf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("no record of the peer for this image, every other record of it down+: forced at once", func(t *testing.T) {
		// the lab: an image made just before its primary site died, whose
		// rbd-mirror never wrote this site a record of it
		notFound := status(t, "s3_b_replaying", "b")
		notFound.PeerSites[0].State, notFound.PeerSites[0].Description = "down+unknown", "status not found"
		siteGone := status(t, "s3_b_replaying", "b")
		siteGone.PeerSites[0].State, siteGone.PeerSites[0].Description, siteGone.PeerSites[0].SiteGone = "down+unknown", "status not found", true
		for _, c := range []struct {
			st   rbd.MirrorStatus
			took time.Duration
		}{{siteGone, 0}, {notFound, failover.DefaultNonForcedFirst}} {
			f := &fake{statuses: []rbd.MirrorStatus{c.st}, promote: []error{notYet}, snaps: peerLists}
			o, logs := opts()
			o.Force = true
			res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
			if res.Err != nil || res.Action != "force-promoted" || res.Took < c.took || res.Took > c.took+failover.DefaultPollCap {
				t.Fatalf("site gone %t: %+v, calls %v", c.st.PeerSites[0].SiteGone, res, f.calls)
			}
			if c.st.PeerSites[0].SiteGone && !strings.Contains(logs.String(), "every record of that site in the pool is down+") {
				t.Errorf("the log does not say why force was safe:\n%s", logs)
			}
		}
	})
	t.Run("snapshots unreadable (the dead peer's lock): forced all the same, says so", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{peerDown}, promote: []error{notYet}, snapsErr: errors.New("rbd snap ls: timed out")}
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" || res.Note != "forced: the age of the data could not be read (rbd snap ls: timed out)" {
			t.Fatalf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("no synced copy: says so", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{peerDown}, promote: []error{notYet}, snaps: [][]rbd.Snapshot{list(copied(9, 5, "non-primary", false, 3))}}
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || !strings.HasPrefix(res.Note, "forced: no completely synced mirror snapshot") {
			t.Fatalf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("peer up, not primary, demotion not arriving: forced after the non-forced period only", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet}, snaps: peerLists}
		o, logs := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" || f.count("promote --force") != 1 {
			t.Fatalf("%+v, calls %v", res, f.calls)
		}
		if res.Took < failover.DefaultNonForcedFirst || res.Took > failover.DefaultNonForcedFirst+failover.DefaultPollCap {
			t.Errorf("forced after %s, want after %s", res.Took, failover.DefaultNonForcedFirst)
		}
		if !strings.Contains(logs.String(), "is up and not primary") {
			t.Errorf("log:\n%s", logs)
		}
	})
	t.Run("the non-forced period ends at its exact length", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet}, snaps: peerLists}
		o, _ := opts()
		// checks at 0, 0.2, 0.6, 1.4, 3.0, 6.2 s
		o.Force, o.NonForcedFirst = true, 6200*time.Millisecond
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" || res.Took != o.NonForcedFirst {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("demotion arriving: never forced, however long", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{peerDown}, promote: []error{notYet, notYet, notYet, nil},
			snaps: [][]rbd.Snapshot{list(copied(9, 8, "demoted", false, 3)), list(copied(9, 8, "demoted", false, 9)), list(copied(9, 8, "demoted", true, 16))}}
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("peer demotes in time: no force", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet, nil}, snaps: peerLists}
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("peer alive and primary: refuses to force", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}, promote: []error{notYet}, snaps: peerLists}
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "reports itself primary") || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("no peer entry: forced after the non-forced period", func(t *testing.T) {
		st := status(t, "s3_b_replaying", "b")
		st.PeerSites = nil
		f := &fake{statuses: []rbd.MirrorStatus{st}, promote: []error{notYet}, snaps: peerLists}
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" || res.Took < failover.DefaultNonForcedFirst {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("without force a gone peer changes nothing", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{peerDown}, promote: []error{notYet}, snaps: peerLists}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "set forcePromote: true") || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

// The disaster as recorded once site-a had been dead longer than its
// rbd-mirror's watch: its record on site-b is down+, so with forcePromote
// the step forces at once (one non-forced try, exit 16) and says why.
func TestForcedPromoteOnRecordedDeadPeer(t *testing.T) {
	l := lab(t, map[string][]string{
		"info":                         {"s6_a_dead_watch_expired.site-b.info"},
		"mirror image status":          {"s6_a_dead_watch_expired.site-b.status", "s7_after_force_promote.site-b.status"},
		"snap ls":                      {"s6_a_dead_watch_expired.site-b.snaps"},
		"mirror image promote":         {"s6_promote_b_peer_dead"},
		"mirror image promote --force": {"s7_force_promote_b"},
	})
	o, logs := opts()
	o.Force = true
	res := only(t, failover.Promote(context.Background(), &rbd.Client{Runner: l}, nil, []rbd.Image{img}, o))
	if res.Err != nil || res.Action != "force-promoted" || res.Took != 0 || l.Count("mirror image promote") != 1 || l.Count("mirror image promote --force") != 1 ||
		!strings.HasPrefix(res.Note, "forced: data as of ") {
		t.Errorf("%+v, calls %v", res, l.Calls())
	}
	if !strings.Contains(logs.String(), "peer site-a is gone: its status is down+") {
		t.Errorf("log:\n%s", logs)
	}
}

// --force over this site's own demotion (the site that took over is lost
// too, and git says so): decided to go ahead, as nothing else brings the app
// back, and the note says exactly which data the app gets and which writes
// are lost.
func TestForcedPromoteOverOwnDemotionSaysWhatIsLost(t *testing.T) {
	peerDown := status(t, "s3_b_replaying", "b")
	peerDown.PeerSites[0].State = "down+stopped"
	demotedAt := time.Date(2026, 11, 24, 9, 0, 30, 0, time.UTC)
	ownDemoted := list(copied(7, 6, "non-primary", true, 16), own(8, demotedAt.Unix(), "demoted", peerUUID))
	for _, c := range []struct {
		name      string
		peerSnaps [][]rbd.Snapshot
		peerErr   error
		want      string
	}{
		{"the peer's snapshots cannot be read (it is gone)", nil, errors.New("connection refused"), "any writes the peer made as primary after that are lost"},
		{"the peer's snapshots show it primary since", [][]rbd.Snapshot{list(copied(10, 8, "non-primary", true, 16), own(11, 3, "primary"))}, nil, "the peer's own snapshots show it was primary since: its writes after this site's demotion are lost"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fake{statuses: []rbd.MirrorStatus{peerDown}, snaps: [][]rbd.Snapshot{ownDemoted}, peerSnaps: c.peerSnaps, peerErr: c.peerErr}
			o, _ := opts()
			o.Force = true
			res := only(t, failover.Promote(context.Background(), f, peer{f}, []rbd.Image{img}, o))
			if res.Err != nil || res.Action != "force-promoted" || f.count("promote --force") != 1 {
				t.Fatalf("%+v, calls %v", res, f.calls)
			}
			want := "forced over this site's own demotion: data as of 2026-11-24T09:00:30Z (2m0s old, when this site demoted it); " + c.want
			if res.Note != want {
				t.Errorf("note %q\nwant %q", res.Note, want)
			}
		})
	}
}

// A forced promote is not done while this site's rbd-mirror holds the
// image's exclusive lock: one stuck on the lost site never lets go, and the
// app's writes then fail. The 20.2 lab: `rbd lock ls` names
// client.<instance_id> of the daemon that the image's status names
// (daemon_service, which a team's user does not see), its status still
// up+replaying.
func TestForcedPromoteWaitsForThisSitesRbdMirror(t *testing.T) {
	peerDown := status(t, "s3_b_replaying", "b") // reported by daemon instance 4132 on vm
	peerDown.PeerSites[0].State = "down+stopped"
	noDaemon := peerDown
	noDaemon.Daemon = rbd.MirrorDaemon{}
	daemon := []rbd.Locker{{ID: "auto 94594378923904", Locker: "client.4132", Address: "127.0.0.1:0/3761145153"}}
	app := []rbd.Locker{{ID: "auto 140417848907856", Locker: "client.4999", Address: "127.0.0.1:0/2845806438"}}
	cutOff := fmt.Errorf("rbd mirror image promote --force: %w", rbd.ErrTimeout)
	forced := func(f *fake) (failover.Result, *fake) {
		o, _ := opts()
		o.Force = true
		return only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o)), f
	}
	gone := func(lockers ...[]rbd.Locker) *fake {
		return &fake{statuses: []rbd.MirrorStatus{peerDown}, promote: []error{notYet}, lockers: lockers}
	}
	t.Run("lets go after two reads: done, once it has", func(t *testing.T) {
		res, f := forced(gone(daemon, daemon, nil))
		// reads at 0, 0.2 and 0.6 s (backing off)
		if res.Err != nil || res.Action != "force-promoted" || f.count("lockers") != 3 || res.Took != 3*failover.DefaultPoll {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("never lets go: fails after MirrorLetGo, naming the daemon and what to do", func(t *testing.T) {
		res, f := forced(gone(daemon))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "this site's rbd-mirror (client.4132 on vm) still holds the image's exclusive lock after 30s") ||
			!strings.Contains(res.Err.Error(), "restarts this site's rbd-mirror") || !strings.Contains(res.Err.Error(), "client.rbd-mirror-peer") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if res.Took < failover.DefaultMirrorLetGo || res.Took > failover.DefaultMirrorLetGo+failover.DefaultPollCap {
			t.Errorf("gave up after %s, want %s", res.Took, failover.DefaultMirrorLetGo)
		}
	})
	t.Run("the step's deadline comes first: fails at it", func(t *testing.T) {
		o, _ := opts()
		o.Force, o.Timeout = true, 10*time.Second
		f := gone(daemon)
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "still holds the image's exclusive lock") || res.Took != o.Timeout {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("another client holds it (the app): done at once", func(t *testing.T) {
		res, f := forced(gone(app))
		if res.Err != nil || res.Action != "force-promoted" || f.count("lockers") != 1 || res.Took != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the status names no daemon (a team's user on 20.2): the holder is taken for it", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{noDaemon}, promote: []error{notYet}, lockers: [][]rbd.Locker{daemon, nil}}
		res, f := forced(f)
		if res.Err != nil || res.Action != "force-promoted" || f.count("lockers") != 2 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		f = &fake{statuses: []rbd.MirrorStatus{noDaemon}, promote: []error{notYet}, lockers: [][]rbd.Locker{app}}
		if res, f = forced(f); res.Err == nil || !strings.Contains(res.Err.Error(), "this site's rbd-mirror (client.4999) still holds") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the daemon let go (up+stopped): a holder is not it, done", func(t *testing.T) {
		stopped := peerDown
		stopped.State, stopped.Description = "up+stopped", "local image is primary"
		f := &fake{statuses: []rbd.MirrorStatus{peerDown, stopped}, promote: []error{notYet}, lockers: [][]rbd.Locker{daemon}}
		res, f := forced(f)
		if res.Err != nil || res.Action != "force-promoted" || f.count("lockers") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the holders cannot be read: done, with a warning", func(t *testing.T) {
		f := gone(daemon)
		f.lockersErr = errors.New("rbd lock ls: permission denied")
		o, logs := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" || !strings.Contains(logs.String(), "reading who holds the image's lock") {
			t.Errorf("%+v, calls %v\n%s", res, f.calls, logs)
		}
	})
	t.Run("a sync that finds it primary already checks too", func(t *testing.T) {
		f := gone(daemon)
		f.primary = true
		res, f := forced(f)
		if res.Err == nil || !strings.Contains(res.Err.Error(), "still holds the image's exclusive lock") || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("without forcePromote nothing is read", func(t *testing.T) {
		f := gone(daemon)
		f.primary = true
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if f.count("lockers") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("the forced promote cut off while the daemon holds the image: says it waits for it", func(t *testing.T) {
		f := gone(daemon)
		f.forced = []error{cutOff}
		res, f := forced(f)
		if res.Err == nil || !strings.Contains(res.Err.Error(), "forced promote did not finish: it waits for this site's rbd-mirror (client.4132 on vm) to close the image") ||
			!errors.Is(res.Err, rbd.ErrTimeout) || res.Action == "force-promoted" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("cut off, nobody else holds it: the plain failure", func(t *testing.T) {
		f := gone(app)
		f.forced = []error{cutOff}
		res, f := forced(f)
		if res.Err == nil || !strings.HasPrefix(res.Err.Error(), "forced promote failed: ") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("refused while the daemon holds it: the plain failure", func(t *testing.T) {
		f := gone(daemon)
		f.forced = []error{refused("mirror", "image", "promote", "--force")}
		res, f := forced(f)
		if res.Err == nil || !strings.HasPrefix(res.Err.Error(), "forced promote failed: ") {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

// The status read started beside the schedule read decides only what comes
// before the step's first promote attempt: a peer seen gone then may be
// back, primary, by the time the attempts end, and forcing on the old read
// would split the brain.
func TestPromoteForcedDecidesOnAStatusReadAfterItsAttempts(t *testing.T) {
	peerBack := status(t, "s3_b_replaying", "b") // site-a up again, "local image is primary"
	peerDown := status(t, "s3_b_replaying", "b")
	peerDown.PeerSites[0].State = "down+stopped"
	// The demotion's copy is complete here, yet Ceph refuses: the step
	// retries without reading the status until the copy stalls.
	f := &backDuringAttempts{fake: &fake{promote: []error{notYet}, snaps: [][]rbd.Snapshot{list(copied(9, 8, "demoted", true, 16))}}, down: peerDown, back: peerBack, read: make(chan struct{})}
	o, _ := opts()
	o.Force, o.Timeout = true, time.Minute
	res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
	if f.count("promote --force") != 0 || res.Err == nil || !strings.Contains(res.Err.Error(), "reports itself primary") {
		t.Errorf("%+v, calls %v", res, f.calls)
	}
	if f.count("status") < 2 || f.count("promote") < 2 {
		t.Errorf("want the attempts, then a new status read; calls %v", f.calls)
	}
}

// backDuringAttempts: the peer is gone until the first promote attempt,
// which waits for the first status read, and back, primary, after it.
type backDuringAttempts struct {
	*fake
	down, back rbd.MirrorStatus
	read       chan struct{}
	once       sync.Once
}

func (f *backDuringAttempts) MirrorStatus(ctx context.Context, img rbd.Image) (rbd.MirrorStatus, error) {
	f.record("status")
	defer f.once.Do(func() { close(f.read) })
	if f.count("promote") > 0 {
		return f.back, nil
	}
	return f.down, nil
}

func (f *backDuringAttempts) Promote(ctx context.Context, img rbd.Image, force bool, timeout time.Duration) error {
	select {
	case <-f.read:
	case <-time.After(3 * time.Second):
	}
	return f.fake.Promote(ctx, img, force, timeout)
}
