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

// fake is one site's cluster, scripted: each call takes the next answer of
// its list and keeps repeating the last one.
type fake struct {
	mu       sync.Mutex
	primary  bool
	statuses []rbd.MirrorStatus
	snaps    []rbd.Snapshot
	promote  []error // answers to non-forced promotes
	calls    []string
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
	err := json.Unmarshal([]byte(`{"name":"img1","mirroring":{"mode":"snapshot","state":"enabled","global_id":"g","primary":`+map[bool]string{true: "true", false: "false"}[f.primary]+`}}`), &info)
	return info, err
}

func (f *fake) MirrorStatus(context.Context, rbd.Image) (rbd.MirrorStatus, error) {
	f.record("status")
	f.mu.Lock()
	defer f.mu.Unlock()
	return next(&f.statuses), nil
}

func (f *fake) Snapshots(context.Context, rbd.Image) ([]rbd.Snapshot, error) {
	f.record("snaps")
	return f.snaps, nil
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

var notYet = &rbd.CmdError{Args: []string{"mirror", "image", "promote"}, ExitCode: 16, Stderr: "image is primary within a remote cluster or demotion is not propagated yet"}

func opts() failover.Options {
	quiet := log.New()
	quiet.SetOutput(&bytes.Buffer{})
	return failover.Options{Timeout: 2 * time.Second, Parallelism: 2, Poll: time.Millisecond, NonForcedFirst: 50 * time.Millisecond,
		BothPrimaryGrace: 50 * time.Millisecond, Log: quiet}
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

func snapAt(unix int64) []rbd.Snapshot {
	var s rbd.Snapshot
	s.ID, s.Namespace.Type, s.Namespace.State = 5, "mirror", "primary"
	s.Timestamp.Time = time.Unix(unix, 0).UTC()
	return []rbd.Snapshot{s}
}

func TestDemote(t *testing.T) {
	t.Run("non-primary: nothing to do", func(t *testing.T) {
		f := &fake{primary: false, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}}
		res := only(t, failover.Demote(context.Background(), f, []rbd.Image{img}, opts()))
		if res.Err != nil || res.Action != "none" || f.count("demote") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("peer has copied the newest snapshot: demote", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{primaryWithPeerAt(t, 1795511193)}, snaps: snapAt(1795511193)}
		res := only(t, failover.Demote(context.Background(), f, []rbd.Image{img}, opts()))
		if res.Err != nil || res.Action != "demoted" || res.After != "non-primary" || f.count("demote") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("peer behind: waits for the copy, then demotes", func(t *testing.T) {
		behind := primaryWithPeerAt(t, 1795511000)
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{behind, behind, behind, primaryWithPeerAt(t, 1795511193)}, snaps: snapAt(1795511193)}
		res := only(t, failover.Demote(context.Background(), f, []rbd.Image{img}, opts()))
		if res.Err != nil || f.count("demote") != 1 || f.count("status") != 4 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("peer rbd-mirror down: never demotes, fails at the timeout", func(t *testing.T) {
		st := status(t, "s3_b_replaying", "a")
		st.PeerSites[0].State = "down+stopped"
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{st}, snaps: snapAt(1795511193)}
		o := opts()
		o.Timeout = 100 * time.Millisecond
		res := only(t, failover.Demote(context.Background(), f, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "peer site-b reports down+stopped") || f.count("demote") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("stale primary after a forced failover: demote at once", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s5_b_back_both_primary", "a")}, snaps: snapAt(1)}
		res := only(t, failover.Demote(context.Background(), f, []rbd.Image{img}, opts()))
		if res.Err != nil || f.count("demote") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestPromoteWithoutForce(t *testing.T) {
	t.Run("waits while the demotion has not replayed", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet, notYet, notYet, nil}}
		res := only(t, failover.Promote(context.Background(), f, []rbd.Image{img}, opts()))
		if res.Err != nil || res.Action != "promoted" || f.count("promote") != 4 || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("peer never demotes: fails with what to do, never forces", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}, promote: []error{notYet}}
		o := opts()
		o.Timeout = 100 * time.Millisecond
		res := only(t, failover.Promote(context.Background(), f, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "set forcePromote: true") || f.count("promote --force") != 0 || res.After != "non-primary" {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("already primary: nothing to do", func(t *testing.T) {
		f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
		res := only(t, failover.Promote(context.Background(), f, []rbd.Image{img}, opts()))
		if res.Err != nil || res.Action != "none" || f.count("promote") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("a failure that is not 'not yet' is not retried", func(t *testing.T) {
		f := &fake{promote: []error{&rbd.CmdError{ExitCode: 1, Stderr: "rbd: couldn't connect to the cluster!"}}}
		res := only(t, failover.Promote(context.Background(), f, []rbd.Image{img}, opts()))
		if res.Err == nil || f.count("promote") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestPromoteBothPrimaryFailsLoudly(t *testing.T) {
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s5_b_back_both_primary", "a")}}
	res := only(t, failover.Promote(context.Background(), f, []rbd.Image{img}, opts()))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "BOTH SITES CLAIM PRIMARY: peer site-b") {
		t.Errorf("%+v", res)
	}
	// A claim that goes away within the grace was a stale record.
	f = &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s5_b_back_both_primary", "a"), status(t, "s3_b_replaying", "a")}}
	if res := only(t, failover.Promote(context.Background(), f, []rbd.Image{img}, opts())); res.Err != nil {
		t.Errorf("stale claim: %+v", res)
	}
}

func TestPromoteForced(t *testing.T) {
	synced := rbd.Snapshot{ID: 9}
	synced.Namespace = rbd.SnapshotNamespace{Type: "mirror", State: "non-primary", Complete: true, PrimaryMirrorUUID: "u", PrimarySnapID: 5}
	synced.Timestamp.Time = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	peerDown := status(t, "s3_b_replaying", "b")
	peerDown.PeerSites[0].State = "down+stopped"
	now := func() time.Time { return time.Date(2026, 11, 24, 9, 2, 30, 0, time.UTC) }

	t.Run("non-forced first, then forced with the data's age", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{peerDown}, promote: []error{notYet}, snaps: []rbd.Snapshot{synced}}
		o := opts()
		o.Force, o.Now = true, now
		res := only(t, failover.Promote(context.Background(), f, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "force-promoted" || f.count("promote") == 0 || f.count("promote --force") != 1 {
			t.Fatalf("%+v, calls %v", res, f.calls)
		}
		if res.Note != "forced: data as of 2026-11-24T09:00:00Z (2m30s old, the last synced mirror snapshot)" {
			t.Errorf("note %q", res.Note)
		}
	})
	t.Run("peer demotes in time: no force", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}, promote: []error{notYet, nil}}
		o := opts()
		o.Force = true
		res := only(t, failover.Promote(context.Background(), f, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "promoted" || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("peer alive and primary: refuses to force", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}, promote: []error{notYet}}
		o := opts()
		o.Force, o.Timeout = true, 200*time.Millisecond
		res := only(t, failover.Promote(context.Background(), f, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "reports itself primary") || f.count("promote --force") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestResync(t *testing.T) {
	t.Run("refused without a forced failover in git", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b")}}
		o := opts()
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, o))
		if res.Err == nil || !strings.Contains(res.Err.Error(), "refusing to resync") || f.count("resync") != 0 || f.count("info") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("split-brain: one request, however long the status lags", func(t *testing.T) {
		sb := status(t, "s5_split_brain", "b")
		f := &fake{statuses: []rbd.MirrorStatus{sb, status(t, "s5_after_resync_cmd", "b"), sb, sb, status(t, "s5_resynced_replaying", "b")}}
		o := opts()
		o.ForcePromoted = true
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "resync requested" || f.count("resync") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("replaying already: nothing to do", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s5_resynced_replaying", "b")}}
		o := opts()
		o.ForcePromoted = true
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, o))
		if res.Err != nil || res.Action != "none" || f.count("resync") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("still primary: the demote must come first", func(t *testing.T) {
		f := &fake{primary: true}
		o := opts()
		o.ForcePromoted = true
		res := only(t, failover.Resync(context.Background(), f, []rbd.Image{img}, o))
		if res.Err == nil || f.count("resync") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestPrepare(t *testing.T) {
	t.Run("copy in error, peer a healthy primary: resync and wait", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b"), status(t, "s5_after_resync_cmd", "b"), status(t, "s5_resynced_replaying", "b")}}
		res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, opts()))
		if res.Err != nil || res.Action != "resynced from the peer" || f.count("resync") != 1 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("healthy copy: nothing to do", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}}
		res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, opts()))
		if res.Err != nil || res.Action != "none" || f.count("resync") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
	t.Run("status unknown: nothing decided", func(t *testing.T) {
		f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_demoted_a_mirror_b_stopped", "b")}}
		res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, opts()))
		if res.Err != nil || f.count("resync") != 0 {
			t.Errorf("%+v, calls %v", res, f.calls)
		}
	})
}

func TestReport(t *testing.T) {
	images := []rbd.Image{{Pool: "p", Name: "a"}, {Pool: "p", Name: "b"}, {Pool: "p", Name: "c"}}
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{{}}}
	r := failover.Promote(context.Background(), f, images, opts())
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
}

func TestPromoteRefusesSplitBrainWithoutForce(t *testing.T) {
	f := &fake{statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b")}, promote: []error{nil}}
	res := only(t, failover.Promote(context.Background(), f, []rbd.Image{img}, opts()))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "this copy is split-brain") || f.count("promote") != 0 {
		t.Errorf("%+v, calls %v", res, f.calls)
	}
}

// lab replays what the two-site lab recorded (pkg/rbd/testdata/lab): each
// rbd verb answers with the next recording of its queue, through the real
// rbd.Client, so the outcomes are classified from Ceph's own text.
type lab struct {
	t      *testing.T
	mu     sync.Mutex
	queues map[string][]string // verb -> recording names
	calls  []string
}

func (l *lab) Run(_ context.Context, argv []string) (rbd.Output, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cmd := strings.Join(argv, " ")
	verb := ""
	for _, v := range []string{"mirror image status", "mirror image resync", "mirror image promote", "mirror image demote", "snap ls", "info"} {
		if strings.Contains(cmd, v) {
			verb = v
			break
		}
	}
	l.calls = append(l.calls, verb)
	q := l.queues[verb]
	if len(q) == 0 {
		l.t.Fatalf("no recording for %q", cmd)
	}
	name := q[0]
	if len(q) > 1 {
		l.queues[verb] = q[1:]
	}
	read := func(ext string) []byte {
		b, err := os.ReadFile("../rbd/testdata/lab/" + name + "." + ext)
		if err != nil {
			l.t.Fatal(err)
		}
		return b
	}
	rc, err := strconv.Atoi(strings.TrimSpace(string(read("rc"))))
	if err != nil {
		l.t.Fatal(err)
	}
	return rbd.Output{Stdout: read("out"), Stderr: read("err"), ExitCode: rc}, nil
}

func (l *lab) count(verb string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if c == verb {
			n++
		}
	}
	return n
}

// The return of site-a after a forced failover, as recorded: a demoted stale
// primary, split-brain, then every answer the status gave while the resync
// recreated the image (exit 2, exit 22, "status not found"), then replaying.
func TestResyncOnRecordedReturn(t *testing.T) {
	l := &lab{t: t, queues: map[string][]string{
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
	}}
	o := opts()
	o.ForcePromoted = true
	res := only(t, failover.Resync(context.Background(), &rbd.Client{Runner: l}, []rbd.Image{img}, o))
	if res.Err != nil || res.Action != "resync requested" || l.count("mirror image resync") != 1 || res.After != "non-primary, replaying" {
		t.Errorf("%+v, calls %v", res, l.calls)
	}

	// A rerun of the Job while the image is being recreated: no new request.
	l = &lab{t: t, queues: map[string][]string{
		"info": {"s10_resync_rc2.site-a.info"},
		"mirror image status": {
			"s10_resync_rc22.site-a.status",
			"s10_resync_rc0_down_unknown_status_not_found.site-a.status",
			"s10_resync_rc0_up_replaying_replaying.site-a.status",
		},
	}}
	res = only(t, failover.Resync(context.Background(), &rbd.Client{Runner: l}, []rbd.Image{img}, o))
	if res.Err != nil || res.Before != "being recreated" || l.count("mirror image resync") != 0 {
		t.Errorf("rerun: %+v, calls %v", res, l.calls)
	}
}

// The disaster as recorded: site-a dead, site-b's non-forced promote answers
// exit 16 until the budget ends; nothing is forced.
func TestPromoteOnRecordedDisaster(t *testing.T) {
	l := &lab{t: t, queues: map[string][]string{
		"info":                 {"s6_a_killed.site-b.info"},
		"mirror image status":  {"s6_a_killed.site-b.status"},
		"mirror image promote": {"s6_promote_b_peer_dead"},
	}}
	o := opts()
	o.Timeout = 100 * time.Millisecond
	res := only(t, failover.Promote(context.Background(), &rbd.Client{Runner: l}, []rbd.Image{img}, o))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "set forcePromote: true") || l.count("mirror image promote") == 0 {
		t.Errorf("%+v, calls %v", res, l.calls)
	}
}

// A planned relocation as recorded: exit 16 and exit 30 while the demotion
// arrives, then success.
func TestPromoteOnRecordedRelocation(t *testing.T) {
	l := &lab{t: t, queues: map[string][]string{
		"info":                 {"s2_demoted_not_replayed.site-b.info"},
		"mirror image status":  {"s3_demote_replayed.site-b.status", "s4_b_primary_replaying.site-b.status"},
		"mirror image promote": {"s5_promote_early_rc16", "s5_promote_early_rc30", "s3_promote_b"},
	}}
	res := only(t, failover.Promote(context.Background(), &rbd.Client{Runner: l}, []rbd.Image{img}, opts()))
	if res.Err != nil || res.Action != "promoted" || l.count("mirror image promote") != 3 {
		t.Errorf("%+v, calls %v", res, l.calls)
	}
}

// The hook sets only what its command line says; every other option must
// take its default (a zero grace or poll would fail or spin at once).
func TestDefaultsApply(t *testing.T) {
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
	quiet := opts().Log
	for name, run := range map[string]func() failover.Report{
		"promote": func() failover.Report {
			return failover.Promote(context.Background(), f, []rbd.Image{img}, failover.Options{Timeout: time.Minute, Log: quiet})
		},
		"demote": func() failover.Report {
			f.primary = false
			return failover.Demote(context.Background(), f, []rbd.Image{img}, failover.Options{Timeout: time.Minute, Log: quiet})
		},
	} {
		if err := run().Err(); err != nil {
			t.Errorf("%s with defaults: %v", name, err)
		}
	}
}
