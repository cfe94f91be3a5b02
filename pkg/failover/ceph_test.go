package failover_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	log "github.com/sirupsen/logrus"

	"github.com/rbd-dr/argocd-rbd-dr/internal/rbdtest"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

var img = rbd.Image{Pool: "replicapool", Name: "img1"}

// status reads a status Ceph 16.2 printed at a stage of a failover
// (pkg/rbd/testdata/reference/README.md says which).
func status(t *testing.T, stage, site string) rbd.MirrorStatus {
	t.Helper()
	b, err := os.ReadFile("../rbd/testdata/reference/status." + stage + "." + site + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var s rbd.MirrorStatus
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// clock is a fake time that moves only when a step waits, so a test
// decides on time windows without depending on the scheduler.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 24, 9, 2, 30, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// fake is one site's cluster, scripted: each call takes the next answer of
// its list and keeps repeating the last one.
type fake struct {
	mu        sync.Mutex
	primary   bool
	statuses  []rbd.MirrorStatus
	snaps     [][]rbd.Snapshot
	promote   []error // answers to non-forced promotes
	peerSnaps [][]rbd.Snapshot
	peerErr   error
	snapsErr  error
	calls     []string
}

func (f *fake) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fake) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

func next[T any](list *[]T) T {
	var v T
	if len(*list) == 0 {
		return v
	}
	v = (*list)[0]
	if len(*list) > 1 {
		*list = (*list)[1:]
	}
	return v
}

func (f *fake) Info(context.Context, rbd.Image) (rbd.Info, error) {
	f.record("info")
	f.mu.Lock()
	defer f.mu.Unlock()
	var info rbd.Info
	err := json.Unmarshal([]byte(`{"name":"img1","mirroring":{"mode":"snapshot","state":"enabled","global_id":"g","primary":`+strconv.FormatBool(f.primary)+`}}`), &info)
	return info, err
}

func (f *fake) MirrorStatus(context.Context, rbd.Image) (rbd.MirrorStatus, error) {
	f.record("status")
	f.mu.Lock()
	defer f.mu.Unlock()
	return next(&f.statuses), nil
}

func (f *fake) Snapshots(ctx context.Context, _ rbd.Image) ([]rbd.Snapshot, error) {
	f.record("snaps")
	if err := ctx.Err(); err != nil {
		return nil, err // as rbd.Exec does with a call whose time is up
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return next(&f.snaps), f.snapsErr
}

func (f *fake) Promote(_ context.Context, _ rbd.Image, force bool, _ time.Duration) error {
	if force {
		f.record("promote --force")
		f.mu.Lock()
		f.primary = true
		f.mu.Unlock()
		return nil
	}
	f.record("promote")
	f.mu.Lock()
	defer f.mu.Unlock()
	err := next(&f.promote)
	if err == nil {
		f.primary = true
	}
	return err
}

func (f *fake) Demote(context.Context, rbd.Image) error {
	f.record("demote")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.primary = false
	return nil
}

func (f *fake) Resync(context.Context, rbd.Image) error {
	f.record("resync")
	return nil
}

// peer is the fake's view of the peer cluster, read with a read-only user.
type peer struct{ f *fake }

func (p peer) Snapshots(context.Context, rbd.Image) ([]rbd.Snapshot, error) {
	p.f.record("peer snaps")
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	return next(&p.f.peerSnaps), p.f.peerErr
}

var notYet = &rbd.CmdError{Args: []string{"mirror", "image", "promote"}, ExitCode: 16, Stderr: "image is primary within a remote cluster or demotion is not propagated yet"}

// opts is a step's options on a fake clock, with every default but the
// budget; logs go to the returned buffer.
func opts() (failover.Options, *bytes.Buffer) {
	var logs bytes.Buffer
	quiet := log.New()
	quiet.SetOutput(&logs)
	return failover.Options{Timeout: 2 * time.Minute, Parallelism: 2, Clock: newClock(), Log: quiet}, &logs
}

func only(t *testing.T, r failover.Report) failover.Result {
	t.Helper()
	if len(r) != 1 {
		t.Fatalf("report has %d rows", len(r))
	}
	return r[0]
}

// The primary copy with its peer replaying, synced to the snapshot taken at
// unix time ts (the recording's peer had synced 1795511193).
func primaryWithPeerAt(t *testing.T, ts int64) rbd.MirrorStatus {
	s := status(t, "s3_b_replaying", "a")
	s.PeerSites[0].Description = strings.ReplaceAll(s.PeerSites[0].Description, "1795511193", strconv.FormatInt(ts, 10))
	return s
}

const peerUUID = "fbe4e640-4e60-4fcc-bd23-6395d5b36305"

// own is a mirror snapshot this site took as primary, linked to peers.
func own(id uint64, unix int64, state string, peers ...string) rbd.Snapshot {
	var s rbd.Snapshot
	s.ID, s.Namespace.Type, s.Namespace.State = id, "mirror", state
	s.Namespace.MirrorPeerUUIDs = peers
	s.Timestamp.Time = time.Unix(unix, 0).UTC()
	return s
}

// copied is this site's copy of the peer's snapshot primaryID.
func copied(id, primaryID uint64, state string, complete bool, object uint64) rbd.Snapshot {
	var s rbd.Snapshot
	s.ID, s.Namespace = id, rbd.SnapshotNamespace{Type: "mirror", State: state, Complete: complete,
		PrimaryMirrorUUID: "87903ee8", PrimarySnapID: primaryID, LastCopiedObjectNumber: object}
	return s
}

func list(s ...rbd.Snapshot) []rbd.Snapshot { return s }

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
	t.Run("the peer unlinked itself from the older snapshot: demote at once", func(t *testing.T) {
		f := &fake{primary: true, snaps: [][]rbd.Snapshot{list(own(4, 1, "primary"), own(5, 2, "primary", peerUUID))}}
		o, _ := opts()
		res := only(t, failover.Demote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "demoted" || res.After != "non-primary" || f.count("demote") != 1 || f.count("status") != 0 || res.Took != 0 {
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
			{list(own(4, 1, "primary"), own(5, 2, "primary", peerUUID)), false, "demoted"},
			{list(own(4, 1, "primary"), copied(7, 6, "non-primary", true, 16)), true, "none"},
			{list(own(4, 1, "demoted", peerUUID)), true, "none"},
		} {
			f := &fake{primary: c.primary, snaps: [][]rbd.Snapshot{c.snaps}}
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
	t.Run("peer not demoted yet: backs off, then speeds up when the demotion arrives", func(t *testing.T) {
		primaryThere := status(t, "s3_b_replaying", "b")
		f := &fake{statuses: []rbd.MirrorStatus{primaryThere, primaryThere, primaryThere, primaryThere, status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet, notYet, notYet, notYet, nil},
			snaps: [][]rbd.Snapshot{peerPrimary, peerPrimary, peerPrimary, demotedCopy(true, 16)}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if want := (1 + 2 + 4 + 1) * failover.DefaultPoll; res.Took != want {
			t.Errorf("took %s, want %s", res.Took, want)
		}
	})
	t.Run("peer never demotes: fails with what to do, never forces, checks seldom", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}, promote: []error{notYet}, snaps: [][]rbd.Snapshot{peerPrimary}}
		o, _ := opts()
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "set forcePromote: true") || f.count("promote --force") != 0 || res.After != "non-primary" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
		if n := f.count("promote"); n < 30 || n > 40 {
			t.Errorf("%d tries in %s, want about one per %s", n, o.Timeout, failover.DefaultPollCap)
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
		f := &fake{statuses: []rbd.MirrorStatus{peerDeadNotExpired, peerDeadNotExpired, peerDeadNotExpired, peerDown}, promote: []error{notYet}, snaps: peerLists}
		o, _ := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" || f.count("promote --force") != 1 || f.count("promote") != 4 {
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

func TestResync(t *testing.T) {
	forced := func() failover.Options {
		o, _ := opts()
		o.ForcePromoted = true
		return o
	}
	t.Run("refused without a forced failover in git", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b")}}
		o, _ := opts()
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "refusing to resync") || f.count("resync") != 0 || f.count("info") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("split-brain: one request, however long the status lags", func(t *testing.T) {
		sb := status(t, "s5_split_brain", "b")
		f := &fake{statuses: []rbd.MirrorStatus{sb, status(t, "s5_after_resync_cmd", "b"), sb, sb, status(t, "s5_resynced_replaying", "b")}}
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, forced()))
		if res.Err != nil || res.Action != "resync requested" || f.count("resync") != 1 || res.After != "non-primary, replaying" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("replaying already: nothing to do", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s5_resynced_replaying", "b")}}
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, forced()))
		if res.Err != nil || res.Action != "none" || f.count("resync") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("still primary: the demote must come first", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b")}}
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, forced()))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "still primary here") || f.count("resync") != 0 || f.count("status") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("in error but not split-brain: no resync", func(t *testing.T) {
		st := status(t, "s5_split_brain", "b")
		st.Description = "error bootstrapping replay"
		f := &fake{statuses: []rbd.MirrorStatus{st}}
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, forced()))
		if res.Err == nil || f.count("resync") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("split-brain, no peer claims primary: nothing to copy from", func(t *testing.T) {
		st := status(t, "s5_split_brain", "b")
		st.PeerSites[0].Description = "replaying"
		f := &fake{statuses: []rbd.MirrorStatus{st}}
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, forced()))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "no peer reports a primary") || f.count("resync") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestPrepare(t *testing.T) {
	t.Run("copy in error, peer a healthy primary: resync and wait", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b"), status(t, "s5_after_resync_cmd", "b"), status(t, "s5_resynced_replaying", "b")}}
		o, _ := opts()
		res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "resynced from the peer" || f.count("resync") != 1 || res.Note != "replaying" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("healthy copy: nothing to do, settled by the status alone", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}}
		o, _ := opts()
		res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "none" || f.count("resync") != 0 || f.count("info") != 0 || !strings.HasPrefix(res.Note, `up+replaying "replaying, `) {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("primary here, its status in error: never resynced", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b")}}
		o, _ := opts()
		res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "none" || f.count("resync") != 0 || res.Before != "primary" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	for name, peer := range map[string]func(*rbd.PeerSite){
		"peer in error":      func(p *rbd.PeerSite) { p.State = "up+error" },
		"peer not primary":   func(p *rbd.PeerSite) { p.Description = "replaying" },
		"peer daemon down":   func(p *rbd.PeerSite) { p.State = "down+stopped" },
		"no peer reports it": nil,
	} {
		t.Run("copy in error, "+name+": no resync", func(t *testing.T) {
			st := status(t, "s5_split_brain", "b")
			if peer == nil {
				st.PeerSites = nil
			} else {
				peer(&st.PeerSites[0])
			}
			f := &fake{statuses: []rbd.MirrorStatus{st}}
			o, _ := opts()
			res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, o))
			if res.Err != nil || f.count("resync") != 0 {
				t.Errorf("%+v, calls %v", res, f.calls)
			}
		})
	}
	t.Run("status unknown: nothing decided", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_demoted_a_mirror_b_stopped", "b")}}
		o, _ := opts()
		res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, o))
		if res.Err != nil || f.count("resync") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestReport(t *testing.T) {
	images := []rbd.Image{{Pool: "p", Name: "a"}, {Pool: "p", Name: "b"}, {Pool: "p", Name: "c"}}
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{{}}}
	o, _ := opts()
	r := failover.Promote(context.Background(), f, nil, images, o)
	if r.Err() != nil || len(r) != 3 || r[0].Target != "p/a" || r[2].Target != "p/c" {
		t.Fatalf("%+v", r)
	}
	var b bytes.Buffer
	r.Write(&b)
	if !strings.HasPrefix(b.String(), "TARGET  BEFORE   AFTER    ACTION  TOOK  NOTE\np/a") {
		t.Errorf("table:\n%s", b.String())
	}
	r[1].Err = errors.New("boom")
	if err := r.Err(); err == nil || err.Error() != "1 of 3 failed: p/b: boom" {
		t.Errorf("%v", err)
	}
	b.Reset()
	failover.Report{{Target: "p/a", Action: "promoted", Took: 1234567890 * time.Nanosecond}}.Write(&b)
	if !strings.Contains(b.String(), " promoted  1.2s ") {
		t.Errorf("took is not rounded to 0.1 s:\n%s", b.String())
	}
}

// Each image's outcome is logged at its level.
func TestLogs(t *testing.T) {
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
	o, logs := opts()
	failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o)
	if !strings.Contains(logs.String(), `level=info msg=done action=none after=primary before=primary target=replicapool/img1`) {
		t.Errorf("%s", logs)
	}
	logs.Reset()
	failover.Resync(context.Background(), f, []rbd.Image{img}, o)
	if !strings.Contains(logs.String(), `level=error msg=failed action=none`) || !strings.Contains(logs.String(), "refusing to resync") {
		t.Errorf("%s", logs)
	}
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

func TestPromoteRefusesSplitBrainWithoutForce(t *testing.T) {
	f := &fake{statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b")}, promote: []error{nil}}
	o, _ := opts()
	res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "this copy is split-brain") || f.count("promote") != 0 {
		t.Errorf("%+v, calls %v", res, f.calls)
	}
}

// lab replays recordings of the two-site lab (pkg/rbd/testdata/lab) through
// the real rbd.Client, so the outcomes are classified from Ceph's own text.
func lab(t *testing.T, queues map[string][]string) *rbdtest.Replay {
	r := &rbdtest.Replay{T: t, Queues: map[string][]rbd.Output{}}
	for verb, names := range queues {
		for _, n := range names {
			r.Queues[verb] = append(r.Queues[verb], rbdtest.Load(t, rbdtest.Dir, n))
		}
	}
	return r
}

// The return of site-a after a forced failover, as recorded: a demoted stale
// primary, split-brain, then every answer the status gave while the resync
// recreated the image (exit 2, exit 22, "status not found"), then replaying.
func TestResyncOnRecordedReturn(t *testing.T) {
	l := lab(t, map[string][]string{
		"info": {"s9_split_brain.site-a.info"},
		"mirror image status": {
			"s9_split_brain.site-a.status",
			"s10_resync_rc0_up_error_split_brain.site-a.status",
			"s10_resync_rc2.site-a.status",
			"s10_resync_rc22.site-a.status",
			"s10_resync_rc0_down_unknown_status_not_found.site-a.status",
			"s10_resync_rc0_up_replaying_replaying.site-a.status",
		},
		"mirror image resync": {"s9_resync_a"},
	})
	o, _ := opts()
	o.ForcePromoted = true
	res := only(t, failover.Resync(context.Background(), &rbd.Client{Runner: l}, []rbd.Image{img}, o))
	if res.Err != nil || res.Action != "resync requested" || l.Count("mirror image resync") != 1 || res.After != "non-primary, replaying" {
		t.Errorf("%+v, calls %v", res, l.Calls())
	}

	// A rerun of the Job while the image is being recreated: no new request.
	l = lab(t, map[string][]string{
		"info": {"s10_resync_rc2.site-a.info"},
		"mirror image status": {
			"s10_resync_rc22.site-a.status",
			"s10_resync_rc0_down_unknown_status_not_found.site-a.status",
			"s10_resync_rc0_up_replaying_replaying.site-a.status",
		},
	})
	res = only(t, failover.Resync(context.Background(), &rbd.Client{Runner: l}, []rbd.Image{img}, o))
	if res.Err != nil || res.Before != "being recreated" || l.Count("mirror image resync") != 0 {
		t.Errorf("rerun: %+v, calls %v", res, l.Calls())
	}
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
		if res.Err == nil || !strings.Contains(res.Err.Error(), want) || l.Count("mirror image promote") == 0 || l.Count("mirror image promote --force") != 0 {
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

// The demote of a planned relocation as recorded: site-b had completed its
// copy of site-a's newest snapshot and unlinked itself from the older one.
func TestDemoteOnRecordedRelocation(t *testing.T) {
	l := lab(t, map[string][]string{
		"info":                {"s1_replaying.site-a.info"},
		"snap ls":             {"s1_replaying.site-a.snaps"},
		"mirror image demote": {"s2_demote_a"},
	})
	o, _ := opts()
	res := only(t, failover.Demote(context.Background(), &rbd.Client{Runner: l}, nil, []rbd.Image{img}, o))
	if res.Err != nil || res.Action != "demoted" || l.Count("mirror image demote") != 1 || l.Count("mirror image status") != 0 {
		t.Errorf("%+v, calls %v", res, l.Calls())
	}
}

// The hook sets only what its command line says; every other option must
// take its default (a zero grace or poll would fail or spin at once).
func TestDefaultsApply(t *testing.T) {
	quiet, _ := opts()
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
	if err := failover.Promote(context.Background(), f, nil, []rbd.Image{img}, failover.Options{Log: quiet.Log}).Err(); err != nil {
		t.Errorf("promote with defaults: %v", err)
	}
	f.primary = false
	if err := failover.Demote(context.Background(), f, nil, []rbd.Image{img}, failover.Options{Log: quiet.Log}).Err(); err != nil {
		t.Errorf("demote with defaults: %v", err)
	}
	// The default budget is config's.
	c := newClock()
	f = &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}, promote: []error{notYet}}
	res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, failover.Options{Clock: c, Log: quiet.Log}))
	if res.Err == nil || res.Took < config.DefaultStepTimeout || res.Took > config.DefaultStepTimeout+failover.DefaultPollCap {
		t.Errorf("%+v: want a failure after %s", res, config.DefaultStepTimeout)
	}
	// So is the parallelism: as many images as that at once, no more.
	g := &gate{want: config.DefaultParallelism}
	images := make([]rbd.Image, 2*config.DefaultParallelism+1)
	for i := range images {
		images[i] = rbd.Image{Pool: "p", Name: strconv.Itoa(i)}
	}
	failover.Demote(context.Background(), g, nil, images, failover.Options{Log: quiet.Log})
	if g.max != config.DefaultParallelism {
		t.Errorf("%d images at once, want %d", g.max, config.DefaultParallelism)
	}
	// One at a time is one at a time.
	g = &gate{want: 1}
	failover.Demote(context.Background(), g, nil, images[:3], failover.Options{Parallelism: 1, Log: quiet.Log})
	if g.max != 1 {
		t.Errorf("%d images at once, want 1", g.max)
	}
}

// gate holds each Info until want of them run at once (or a second passes),
// and notes the most that ever ran at once.
type gate struct {
	fake
	want, in, max int
}

func (g *gate) Info(ctx context.Context, i rbd.Image) (rbd.Info, error) {
	g.mu.Lock()
	g.in++
	g.max = max(g.max, g.in)
	g.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		full := g.max >= g.want
		g.mu.Unlock()
		if full {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	g.mu.Lock()
	g.in--
	g.mu.Unlock()
	return g.fake.Info(ctx, i)
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
