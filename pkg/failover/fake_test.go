package failover_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	log "github.com/sirupsen/logrus"

	"github.com/rbd-dr/argocd-rbd-dr/internal/rbdtest"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// The fakes and fixtures that the Ceph steps' tests share.

// img is the image the unit tests move.
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
	forced    []error // answers to forced promotes
	demote    []error // answers to demotes
	resync    []error // answers to resync requests
	peerSnaps [][]rbd.Snapshot
	peerErr   error
	snapsErr  error
	// schedules are this site's mirror snapshot schedules (every level).
	schedules    []rbd.Schedule
	schedulesErr error
	// meta and peerMeta are this site's and the peer's image metadata.
	meta, peerMeta map[string]string
	setMetaErr     []error
	// lockers are the image's lock holders, read after a forced promote.
	lockers    [][]rbd.Locker
	lockersErr error
	calls      []string
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

// changes are the calls made that ask Ceph to change something.
func (f *fake) changes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		switch c {
		case "promote", "promote --force", "demote", "resync", "set meta":
			out = append(out, c)
		}
	}
	return out
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
		defer f.mu.Unlock()
		err := next(&f.forced)
		if err == nil {
			f.primary = true
		}
		return err
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

func (f *fake) Lockers(context.Context, rbd.Image) ([]rbd.Locker, error) {
	f.record("lockers")
	f.mu.Lock()
	defer f.mu.Unlock()
	return next(&f.lockers), f.lockersErr
}

func (f *fake) Demote(context.Context, rbd.Image) error {
	f.record("demote")
	f.mu.Lock()
	defer f.mu.Unlock()
	err := next(&f.demote)
	if err == nil {
		f.primary = false
	}
	return err
}

func (f *fake) Resync(context.Context, rbd.Image) error {
	f.record("resync")
	f.mu.Lock()
	defer f.mu.Unlock()
	return next(&f.resync)
}

func (f *fake) Schedules(context.Context) ([]rbd.Schedule, error) {
	f.record("schedules")
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.schedules, f.schedulesErr
}

func (f *fake) Meta(_ context.Context, _ rbd.Image, key string) (string, bool, error) {
	f.record("meta")
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.meta[key]
	return v, ok, nil
}

func (f *fake) SetMeta(_ context.Context, _ rbd.Image, key, value string) error {
	f.record("set meta")
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := next(&f.setMetaErr); err != nil {
		return err
	}
	if f.meta == nil {
		f.meta = map[string]string{}
	}
	f.meta[key] = value
	return nil
}

func (p peer) HeaderMeta(_ context.Context, _ rbd.Image, key string) (string, bool, error) {
	p.f.record("peer meta")
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	v, ok := p.f.peerMeta[key]
	return v, ok, p.f.peerErr
}

// peer is the fake's view of the peer cluster, read with a read-only user.
type peer struct{ f *fake }

func (p peer) Snapshots(context.Context, rbd.Image) ([]rbd.Snapshot, error) {
	p.f.record("peer snaps")
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	return next(&p.f.peerSnaps), p.f.peerErr
}

// stuckPeer is a peer whose snapshot list answers only once its call is
// cancelled (then it records "peer cancelled"), or after three seconds.
type stuckPeer struct{ f *fake }

func (p stuckPeer) Snapshots(ctx context.Context, img rbd.Image) ([]rbd.Snapshot, error) {
	p.f.record("peer snaps")
	select {
	case <-ctx.Done():
		p.f.record("peer cancelled")
		return nil, ctx.Err()
	case <-time.After(3 * time.Second):
		return peer(p).Snapshots(ctx, img)
	}
}

func (p stuckPeer) HeaderMeta(ctx context.Context, img rbd.Image, key string) (string, bool, error) {
	return peer(p).HeaderMeta(ctx, img, key)
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

// lab replays recordings of the two-site lab (pkg/rbd/testdata/lab-16.2) through
// the real rbd.Client, so the outcomes are classified from Ceph's own text.
func lab(t *testing.T, queues map[string][]string) *rbdtest.Replay {
	// Recording the promotion time prints nothing and succeeds; none was
	// recorded before (Ceph 16.2's answer for a key that is not set).
	r := &rbdtest.Replay{T: t, Queues: map[string][]rbd.Output{
		"image-meta set": {{}},
		// Nobody holds the image (Ceph 16.2's answer then; the forced
		// promote's check that this site's rbd-mirror let go).
		"lock ls":        {{Stdout: []byte("[]\n")}},
		"image-meta get": {{ExitCode: 2, Stderr: []byte("failed to get metadata rbd-dr.io/promoted-at of image : (2) No such file or directory\nrbd: getting metadata failed: (2) No such file or directory\n")}},
	}}
	for verb, names := range queues {
		for _, n := range names {
			r.Queues[verb] = append(r.Queues[verb], rbdtest.Load(t, rbdtest.Dir, n))
		}
	}
	return r
}
