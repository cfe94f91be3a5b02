package rbd_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/internal/rbdtest"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// rpoRecording decodes testdata/rpo/NAME (see its README).
func rpoRecording(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rpo", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestCoveringTakesTheMostSpecificLevel(t *testing.T) {
	var scheds []rbd.Schedule
	rpoRecording(t, "schedule-ls.json", &scheds)
	cases := []struct {
		img      rbd.Image
		interval time.Duration
		level    string
	}{
		{rbd.Image{Pool: "replicapool", Name: "img1"}, 3 * time.Hour, "image replicapool/img1"},
		{rbd.Image{Pool: "replicapool", Name: "img2"}, 2 * time.Minute, "image replicapool/img2"},
		{rbd.Image{Pool: "replicapool", Name: "other"}, time.Minute, "pool replicapool"},
		{rbd.Image{Pool: "otherpool", Name: "img2"}, 5 * time.Minute, "every pool"},
	}
	for _, c := range cases {
		got, ok, err := rbd.Covering(scheds, c.img)
		if err != nil || !ok || got.Interval != c.interval || got.Level != c.level {
			t.Errorf("%s: got %+v %v %v, want every %s from %s", c.img, got, ok, err, c.interval, c.level)
		}
	}
	// A level whose schedules were all removed covers nothing.
	if _, ok, _ := rbd.Covering([]rbd.Schedule{{Pool: "otherpool", Namespace: "-", Image: "-"}}, rbd.Image{Pool: "otherpool", Name: "x"}); ok {
		t.Error("a level without schedules covers its images")
	}
	// Without the every-pool level, an image of another pool has none.
	if _, ok, _ := rbd.Covering(scheds[1:], rbd.Image{Pool: "otherpool", Name: "x"}); ok {
		t.Error("otherpool/x is covered without any schedule for it")
	}
}

func TestCoveringTakesTheShortestItemOfALevel(t *testing.T) {
	scheds := []rbd.Schedule{{Pool: "p", Namespace: "-", Image: "-", Items: []rbd.ScheduleItem{{Interval: "1h"}, {Interval: "15m"}, {Interval: "1d"}}}}
	got, ok, err := rbd.Covering(scheds, rbd.Image{Pool: "p", Name: "i"})
	if err != nil || !ok || got.Interval != 15*time.Minute {
		t.Errorf("got %+v %v %v, want every 15m", got, ok, err)
	}
	scheds[0].Items[1].Interval = "15x"
	if _, _, err := rbd.Covering(scheds, rbd.Image{Pool: "p", Name: "i"}); err == nil || !strings.Contains(err.Error(), `"15x"`) {
		t.Errorf("an unreadable interval: got %v", err)
	}
}

func TestParseInterval(t *testing.T) {
	good := map[string]time.Duration{"1m": time.Minute, "90m": 90 * time.Minute, "2h": 2 * time.Hour, "1d": 24 * time.Hour}
	for s, want := range good {
		if got, err := rbd.ParseInterval(s); err != nil || got != want {
			t.Errorf("ParseInterval(%q) = %v, %v; want %v", s, got, err, want)
		}
		if back := rbd.FormatInterval(want); back != s && s != "90m" {
			t.Errorf("FormatInterval(%v) = %q, want %q", want, back, s)
		}
	}
	for _, s := range []string{"", "m", "0m", "-1m", "5s", "1.5h", "5"} {
		if _, err := rbd.ParseInterval(s); err == nil {
			t.Errorf("ParseInterval(%q) accepted", s)
		}
	}
}

func TestNextScheduled(t *testing.T) {
	var status []rbd.ScheduledSnapshot
	rpoRecording(t, "schedule-status.json", &status)
	next, ok := rbd.NextScheduled(status, rbd.Image{Pool: "replicapool", Name: "img2"})
	when, readable := next.When(time.UTC)
	if !ok || !readable || !when.Equal(time.Date(2026, 12, 5, 9, 16, 0, 0, time.UTC)) {
		t.Errorf("img2: got %+v %v %v", next, ok, when)
	}
	if _, ok := rbd.NextScheduled(status, rbd.Image{Pool: "replicapool", Name: "img3"}); ok {
		t.Error("img3 is not in the status")
	}
}

func TestScheduleReadWithoutMgrCapIsDenied(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "rpo", "schedule-ls-no-mgr-cap.err"))
	if err != nil {
		t.Fatal(err)
	}
	e := &rbd.CmdError{Args: []string{"mirror", "snapshot", "schedule", "ls"}, ExitCode: 13, Stderr: string(b)}
	if !errors.Is(e, rbd.ErrDenied) {
		t.Errorf("%v is not ErrDenied", e)
	}
	if !errors.Is(&rbd.CmdError{ExitCode: 1, Stderr: "rbd: error opening image img2: (1) Operation not permitted"}, rbd.ErrDenied) {
		t.Error("EPERM is not ErrDenied")
	}
	if errors.Is(&rbd.CmdError{ExitCode: 2, Stderr: "No such file or directory"}, rbd.ErrDenied) {
		t.Error("a missing image is ErrDenied")
	}
}

// The last complete copy, read from each site at each moment of the
// recordings: the primary's snapshot time from the replay details while a
// record has them (a killed rbd-mirror's too), else the snapshots.
func TestLastCopyOf(t *testing.T) {
	at := func(hms string) time.Time {
		tm, _ := time.Parse(time.DateTime, "2026-12-05 "+hms)
		return tm
	}
	cases := []struct {
		name    string
		primary bool
		want    time.Time
		from    string
	}{
		{"primary-peer-replaying", true, time.Unix(1796462160, 0), "status"},
		{"primary-peer-killed", true, time.Unix(1796462160, 0), "status"},
		{"primary-peer-stopped", true, at("09:14:00"), "snapshots"},
		{"nonprimary-replaying", false, time.Unix(1796462160, 0), "status"},
		{"nonprimary-killed", false, time.Unix(1796462160, 0), "status"},
		{"nonprimary-stopped", false, at("09:14:01"), "snapshots"},
	}
	for _, c := range cases {
		var st rbd.MirrorStatus
		var snaps []rbd.Snapshot
		rpoRecording(t, c.name+".status.json", &st)
		snapsFile := c.name + ".snaps.json"
		if c.name == "primary-peer-killed" {
			snapsFile = "primary-peer-replaying.snaps.json"
		}
		rpoRecording(t, snapsFile, &snaps)
		got, ok := rbd.LastCopyOf(st, snaps, c.primary)
		if !ok || !got.At.Equal(c.want) || got.From != c.from {
			t.Errorf("%s: got %v from %q (%v), want %v from %s", c.name, got.At, got.From, ok, c.want.UTC(), c.from)
		}
	}
}

func TestLastCopyOfNothingCopied(t *testing.T) {
	own := func(id uint64, peers ...string) rbd.Snapshot {
		return rbd.Snapshot{ID: id, Timestamp: rbd.SnapTime{Time: time.Unix(int64(id), 0)}, Namespace: rbd.SnapshotNamespace{Type: "mirror", State: "primary", MirrorPeerUUIDs: peers}}
	}
	st := rbd.MirrorStatus{PeerSites: []rbd.PeerSite{{State: "up+starting_replay", Description: "starting replay"}}}
	// One linked own snapshot: its copy may still be running.
	if got, ok := rbd.LastCopyOf(st, []rbd.Snapshot{own(1, "p")}, true); ok {
		t.Errorf("a first snapshot still linked counts as copied: %+v", got)
	}
	// Replaying, the first copy not complete yet: details without a local
	// snapshot time (the lab's record of a new image, 2026-12-05).
	first := rbd.MirrorStatus{PeerSites: []rbd.PeerSite{{State: "up+replaying", Description: `replaying, {"bytes_per_second":0.0,"bytes_per_snapshot":0.0,"last_snapshot_bytes":0,"last_snapshot_sync_seconds":0,"remote_snapshot_timestamp":1796461956,"replay_state":"idle"}`}}}
	if got, ok := rbd.LastCopyOf(first, []rbd.Snapshot{own(1, "p")}, true); ok {
		t.Errorf("details without a local snapshot time count as a copy: %+v", got)
	}
	// No peer at all.
	if _, ok := rbd.LastCopyOf(rbd.MirrorStatus{}, []rbd.Snapshot{own(1), own(2, "p")}, true); ok {
		t.Error("a primary without a peer counts as copied")
	}
	// A non-primary with no complete copy.
	partial := rbd.Snapshot{ID: 3, Namespace: rbd.SnapshotNamespace{Type: "mirror", State: "non-primary", PrimaryMirrorUUID: "u", Complete: false}}
	if _, ok := rbd.LastCopyOf(rbd.MirrorStatus{State: "up+syncing", Description: "syncing"}, []rbd.Snapshot{partial}, false); ok {
		t.Error("a partial copy counts as copied")
	}
	// Just promoted here from a complete copy of the peer's demotion, the
	// peer's replayer not started yet: the peer holds that data.
	demotion := rbd.Snapshot{ID: 3, Timestamp: rbd.SnapTime{Time: time.Unix(10, 0)}, Namespace: rbd.SnapshotNamespace{Type: "mirror", State: "demoted", PrimaryMirrorUUID: "u", Complete: true}}
	if got, ok := rbd.LastCopyOf(st, []rbd.Snapshot{demotion, own(11, "p")}, true); !ok || got.At.Unix() != 10 {
		t.Errorf("just promoted: got %+v %v, want the copied demotion's time", got, ok)
	}
	// Just demoted here: the primary was promoted from this data.
	demoted := own(20)
	demoted.Namespace.State = "demoted"
	if got, ok := rbd.LastCopyOf(rbd.MirrorStatus{State: "up+starting_replay", Description: "starting replay"}, []rbd.Snapshot{own(19), demoted}, false); !ok || got.At.Unix() != 20 {
		t.Errorf("just demoted: got %+v %v, want the demotion's time", got, ok)
	}
	// The peer linked to an older snapshot: that one is its last complete copy.
	if got, ok := rbd.LastCopyOf(st, []rbd.Snapshot{own(1), own(2, "p"), own(3, "p")}, true); !ok || got.At.Unix() != 2 {
		t.Errorf("got %+v %v, want snapshot 2's time", got, ok)
	}
}

func TestOlderOwnAndCopiedSince(t *testing.T) {
	var snaps []rbd.Snapshot
	rpoRecording(t, "primary-peer-replaying.snaps.json", &snaps)
	older, ok := rbd.OlderOwn(snaps)
	if !ok || older.ID != 6 {
		t.Fatalf("older own: %+v %v, want snapshot 6", older, ok)
	}
	if _, ok := rbd.OlderOwn(snaps[1:]); ok {
		t.Error("a single own snapshot has an older one")
	}
	var killed rbd.MirrorStatus // the record a killed rbd-mirror left: copied up to 1796462160
	rpoRecording(t, "primary-peer-killed.status.json", &killed)
	p := killed.PeerSites[0]
	if !p.CopiedSince(1796462160) || p.CopiedSince(1796462161) {
		t.Error("CopiedSince does not read the record's local_snapshot_timestamp")
	}
	var stopped rbd.MirrorStatus // "stopped": no details at all
	rpoRecording(t, "primary-peer-stopped.status.json", &stopped)
	if stopped.PeerSites[0].CopiedSince(0) {
		t.Error("a record without replay details shows a copy")
	}
}

// HeaderMeta reads image metadata as a read-only user can: the image's id
// from rbd info, then the header's omap key with rados, from rbd's folder.
func TestHeaderMeta(t *testing.T) {
	for _, c := range []struct {
		name  string
		omap  rbd.Output
		value string
		set   bool
	}{
		// Ceph 16.2's answers, seen on the lab.
		{"not set", rbd.Output{ExitCode: 1, Stdout: []byte("No such key: replicapool/rbd_header.1037e8e8bb39/metadata_rbd-dr.io/promoted-at\n")}, "", false},
		{"set", rbd.Output{Stdout: []byte("2026-12-05T09:21:00Z"), Stderr: []byte("Writing to -\n")}, "2026-12-05T09:21:00Z", true},
	} {
		r := &rbdtest.Replay{T: t, Queues: map[string][]rbd.Output{
			"info":       {{Stdout: []byte(`{"name":"img3","id":"1037e8e8bb39"}`)}},
			"getomapval": {c.omap},
		}}
		rec := &argvRecorder{Runner: r}
		cl := &rbd.Client{Conn: rbd.Conn{Binary: "/opt/ceph/bin/rbd", ID: "peer"}, Runner: rec}
		v, set, err := cl.HeaderMeta(context.Background(), rbd.Image{Pool: "replicapool", Name: "img3"}, "rbd-dr.io/promoted-at")
		if err != nil || v != c.value || set != c.set {
			t.Errorf("%s: %q %v %v", c.name, v, set, err)
		}
		calls := rec.argv
		if len(calls) != 2 || calls[1][0] != "/opt/ceph/bin/rados" || !slices.Contains(calls[1], "rbd_header.1037e8e8bb39") || !slices.Contains(calls[1], "--id") {
			t.Errorf("%s: calls %v", c.name, calls)
		}
	}
	// An id that could be read as something else is refused.
	r := &rbdtest.Replay{T: t, Queues: map[string][]rbd.Output{"info": {{Stdout: []byte(`{"id":"-x"}`)}}}}
	if _, _, err := (&rbd.Client{Runner: r}).HeaderMeta(context.Background(), rbd.Image{Pool: "p", Name: "i"}, "k"); err == nil {
		t.Error("an image id starting with - was used")
	}
}

// argvRecorder keeps every command line its Runner is given.
type argvRecorder struct {
	rbd.Runner
	argv [][]string
}

func (a *argvRecorder) Run(ctx context.Context, argv []string) (rbd.Output, error) {
	a.argv = append(a.argv, argv)
	return a.Runner.Run(ctx, argv)
}

// The levels of a RADOS namespace, as `schedule ls --recursive` printed them
// on the 20.2 lab for a key confined to replicapool/teama: an image of the
// namespace takes its own level, then the namespace's, then the pool's.
func TestCoveringInARadosNamespace(t *testing.T) {
	var scheds []rbd.Schedule
	doc := `[{"pool":"replicapool","namespace":"-","image":"-","items":[{"interval":"3m","start_time":""}]},` +
		`{"pool":"replicapool","namespace":"teama","image":"-","items":[{"interval":"2m","start_time":""}]},` +
		`{"pool":"replicapool","namespace":"teama","image":"a1","items":[{"interval":"1m","start_time":""}]}]`
	if err := json.Unmarshal([]byte(doc), &scheds); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		img      rbd.Image
		interval time.Duration
		level    string
	}{
		{rbd.Image{Pool: "replicapool", Namespace: "teama", Name: "a1"}, time.Minute, "image replicapool/teama/a1"},
		{rbd.Image{Pool: "replicapool", Namespace: "teama", Name: "a2"}, 2 * time.Minute, "namespace replicapool/teama"},
		{rbd.Image{Pool: "replicapool", Namespace: "teamb", Name: "a1"}, 3 * time.Minute, "pool replicapool"},
		// an image outside any namespace never takes a namespace's level
		{rbd.Image{Pool: "replicapool", Name: "a1"}, 3 * time.Minute, "pool replicapool"},
	} {
		got, ok, err := rbd.Covering(scheds, c.img)
		if err != nil || !ok || got.Interval != c.interval || got.Level != c.level {
			t.Errorf("%s: got %+v %v %v, want every %s from %s", c.img, got, ok, err, c.interval, c.level)
		}
	}
	if _, ok, _ := rbd.Covering(scheds[1:2], rbd.Image{Pool: "replicapool", Name: "x"}); ok {
		t.Error("teama's namespace level covers an image outside any namespace")
	}
}

// In a RADOS namespace every pool-level call names it: the schedule status,
// and rados's read of the image header.
func TestCallsNameTheRadosNamespace(t *testing.T) {
	img := rbd.Image{Pool: "replicapool", Namespace: "teama", Name: "img3"}
	if img.CapScope() != "pool=replicapool namespace=teama" || img.ScheduleScope() != "--pool replicapool --namespace teama" {
		t.Errorf("scopes %q, %q", img.CapScope(), img.ScheduleScope())
	}
	if out := (rbd.Image{Pool: "p", Name: "i"}); out.CapScope() != "pool=p" || out.ScheduleScope() != "--pool p" {
		t.Errorf("scopes outside a namespace %q, %q", out.CapScope(), out.ScheduleScope())
	}
	meta := &argvRecorder{Runner: &rbdtest.Replay{T: t, Queues: map[string][]rbd.Output{
		"info":       {{Stdout: []byte(`{"name":"img3","id":"1037e8e8bb39"}`)}},
		"getomapval": {{Stdout: []byte("v")}},
	}}}
	if _, _, err := (&rbd.Client{Runner: meta}).HeaderMeta(context.Background(), img, "k"); err != nil {
		t.Fatal(err)
	}
	if len(meta.argv) != 2 || !strings.Contains(strings.Join(meta.argv[1], " "), "--pool replicapool --namespace teama getomapval rbd_header.1037e8e8bb39") {
		t.Errorf("rados outside the namespace: %v", meta.argv)
	}
	status := &argvRecorder{Runner: answerAll(`[]`)}
	cl := &rbd.Client{Runner: status}
	if _, err := cl.ScheduleStatus(context.Background(), img.Place()); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ScheduleStatus(context.Background(), "bad/place/x"); err == nil {
		t.Error("a place of three parts was asked for")
	}
	if len(status.argv) != 1 || !strings.Contains(strings.Join(status.argv[0], " "), "schedule status --pool replicapool --namespace teama") {
		t.Errorf("schedule status outside the namespace: %v", status.argv)
	}
}

// answerAll answers every command with stdout.
type answerAll string

func (a answerAll) Run(context.Context, []string) (rbd.Output, error) {
	return rbd.Output{Stdout: []byte(a)}, nil
}
