package rbd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/internal/rbdtest"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// recorded is testdata/reference: what Ceph 16.2.15 printed at each stage of
// a failover on a two-site lab (see its README.md).
func recorded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "reference", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func status(t *testing.T, stage, site string) rbd.MirrorStatus {
	t.Helper()
	var s rbd.MirrorStatus
	if err := json.Unmarshal(recorded(t, "status."+stage+"."+site+".json"), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Each recorded stage, read the way the failover steps read it.
func TestStatusStages(t *testing.T) {
	type view struct{ known, replaying, splitBrain, errored, peerKnown, peerPrimary, peerGone bool }
	cases := []struct {
		stage, site string
		want        view
	}{
		{"s3_b_replaying", "a", view{known: true, peerKnown: true}},
		{"s3_b_replaying", "b", view{known: true, replaying: true, peerKnown: true, peerPrimary: true}},
		// b's rbd-mirror is stopped: its status is a stale record, never decided on.
		{"s4_demoted_a_mirror_b_stopped", "b", view{peerKnown: true}},
		{"s4_b_sees_demoted", "a", view{known: true, peerKnown: true}},
		{"s4_b_sees_demoted", "b", view{known: true, peerKnown: true}},
		{"s5_after_force_promote", "a", view{known: true, peerKnown: true, peerPrimary: true}},
		// both claim primary and neither says split-brain yet
		{"s5_b_back_both_primary", "a", view{known: true, peerKnown: true, peerPrimary: true}},
		{"s5_b_back_both_primary", "b", view{known: true, peerKnown: true, peerPrimary: true}},
		{"s5_split_brain", "b", view{known: true, splitBrain: true, errored: true, peerKnown: true, peerPrimary: true}},
		// right after the resync request the status still says split-brain: it lags.
		{"s5_after_resync_cmd", "b", view{known: true, splitBrain: true, errored: true, peerKnown: true, peerPrimary: true}},
		{"s5_resynced_replaying", "b", view{known: true, replaying: true, peerKnown: true, peerPrimary: true}},
	}
	for _, c := range cases {
		t.Run(c.stage+"/"+c.site, func(t *testing.T) {
			s := status(t, c.stage, c.site)
			if len(s.PeerSites) != 1 {
				t.Fatalf("peer sites: %+v", s.PeerSites)
			}
			p := s.PeerSites[0]
			got := view{s.Known(), s.Replaying(), s.SplitBrain(), s.Error(), p.Known(), p.ClaimsPrimary(), p.Gone()}
			if got != c.want {
				t.Errorf("read as %+v, want %+v", got, c.want)
			}
		})
	}
}

// mirrorVerbs are the verbs that change an image's mirroring.
var mirrorVerbs = []string{"mirror image promote", "mirror image promote --force", "mirror image demote", "mirror image resync"}

func output(t *testing.T, name string) rbd.Output {
	return rbdtest.Load(t, filepath.Join("testdata", "reference"), name)
}

func TestCommandOutcomes(t *testing.T) {
	img := rbd.Image{Pool: "replicapool", Name: "img1"}
	conn := rbd.Conn{Conf: "/lab/a.conf", ID: "admin", Keyring: "/lab/a.keyring"}
	for _, c := range []struct {
		recording string
		call      func(*rbd.Client) error
		want      error
		message   string
	}{
		{"s4_promote_b_while_a_primary", func(c *rbd.Client) error { return c.Promote(context.Background(), img, false, 0) }, rbd.ErrNotYet,
			"rbd mirror image promote replicapool/img1: exit 16: librbd::mirror::PromoteRequest: handle_get_info: image is primary within a remote cluster or demotion is not propagated yet; rbd: error promoting image to primary; librbd::api::Mirror: image_promote: failed to promote image"},
		{"s4_promote_b_before_demotion_replicated", func(c *rbd.Client) error { return c.Promote(context.Background(), img, false, 0) }, rbd.ErrNotYet, ""},
		{"s4_promote_b", func(c *rbd.Client) error { return c.Promote(context.Background(), img, false, 0) }, nil, ""},
		{"s5_force_promote_a", func(c *rbd.Client) error { return c.Promote(context.Background(), img, true, 0) }, nil, ""},
		{"s4_demote_a", func(c *rbd.Client) error { return c.Demote(context.Background(), img) }, nil, ""},
		{"s5_resync_b", func(c *rbd.Client) error { return c.Resync(context.Background(), img) }, nil, ""},
	} {
		t.Run(c.recording, func(t *testing.T) {
			r := rbdtest.Answer(t, output(t, c.recording), mirrorVerbs...)
			err := c.call(&rbd.Client{Conn: conn, Runner: r})
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.message != "" && err.Error() != c.message {
				t.Errorf("message\n  %s\nwant\n  %s", err, c.message)
			}
			for _, other := range []error{rbd.ErrAlreadyPrimary, rbd.ErrNotPrimary, rbd.ErrNotFound, rbd.ErrTimeout} {
				if errors.Is(err, other) {
					t.Errorf("%v also reads as %v", err, other)
				}
			}
			argv := r.Argv()[0]
			if !slices.Equal(argv[:7], []string{"rbd", "--conf", "/lab/a.conf", "--id", "admin", "--keyring", "/lab/a.keyring"}) || argv[len(argv)-1] != "replicapool/img1" {
				t.Errorf("argv %v", argv)
			}
			if force := slices.Contains(argv, "--force"); force != (c.recording == "s5_force_promote_a") {
				t.Errorf("--force on %v", argv)
			}
		})
	}
}

// rbd sometimes prints a log line right after its own message, with no
// newline between: the summary still keeps them apart.
func TestSummaryOfRunTogetherLines(t *testing.T) {
	r := rbdtest.Answer(t, rbd.Output{ExitCode: 16, Stderr: []byte("rbd: error promoting image to primary2026-11-24T10:35:11.486+0000 7f69ac6d9380 -1 librbd::api::Mirror: image_promote: failed to promote image\n")}, mirrorVerbs...)
	err := (&rbd.Client{Runner: r}).Promote(context.Background(), rbd.Image{Pool: "p", Name: "i"}, false, 0)
	if want := "exit 16: rbd: error promoting image to primary; librbd::api::Mirror: image_promote: failed to promote image"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("%v", err)
	}
}

func TestClassification(t *testing.T) {
	for _, c := range []struct {
		rc     int
		stderr string
		want   error
	}{
		{30, "rbd: error promoting image to primary: (30) Read-only file system", rbd.ErrNotYet},
		{22, "librbd::mirror::PromoteRequest: 0x1 handle_get_info: image is already primary", rbd.ErrAlreadyPrimary},
		{22, "librbd::mirror::DemoteRequest: 0x1 handle_get_info: image is not primary", rbd.ErrNotPrimary},
		{2, "rbd: error opening image img1: (2) No such file or directory", rbd.ErrNotFound},
	} {
		r := rbdtest.Answer(t, rbd.Output{ExitCode: c.rc, Stderr: []byte(c.stderr)}, mirrorVerbs...)
		err := (&rbd.Client{Runner: r}).Promote(context.Background(), rbd.Image{Pool: "p", Name: "i"}, false, 0)
		if !errors.Is(err, c.want) {
			t.Errorf("exit %d %q: %v, want %v", c.rc, c.stderr, err, c.want)
		}
	}
	// exit 16 without the demotion message is not "not yet": it is not retried blindly.
	r := rbdtest.Answer(t, rbd.Output{ExitCode: 16, Stderr: []byte("rbd: image is busy")}, mirrorVerbs...)
	if err := (&rbd.Client{Runner: r}).Promote(context.Background(), rbd.Image{Pool: "p", Name: "i"}, false, 0); errors.Is(err, rbd.ErrNotYet) {
		t.Errorf("%v read as not-yet", err)
	}
}

// A real process that outlives its timeout is killed and reported as such.
func TestExecTimeout(t *testing.T) {
	slow := filepath.Join(t.TempDir(), "rbd")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nsleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := &rbd.Client{Conn: rbd.Conn{Binary: slow}, Runner: rbd.Exec{}}
	err := c.Promote(context.Background(), rbd.Image{Pool: "p", Name: "i"}, true, 100*time.Millisecond)
	if !errors.Is(err, rbd.ErrTimeout) || err.Error() != "rbd mirror image promote --force p/i: exit -1: timed out after 100ms" {
		t.Fatalf("got %v", err)
	}
}

// A process that leaves a child of its own holding rbd's output (out of its
// process group, so the kill misses it) does not hold the call for longer
// than the grace for its output.
func TestExecEscapedChild(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidfile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	// A short grace keeps the suite (and each of make mutate's runs) fast;
	// the production default is pinned below.
	c := &rbd.Client{Conn: rbd.Conn{Binary: fakeRbd(t, "setsid sleep 600 & echo $! > "+pidfile+"; sleep 600")}, Runner: rbd.Exec{WaitDelay: 300 * time.Millisecond}, CallTimeout: 100 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- c.Demote(context.Background(), rbd.Image{Pool: "p", Name: "i"}) }()
	// The grace for the output (Exec's WaitDelay) ends the call; the
	// escaped child would hold it for 600 s, the default grace for 5 s.
	// Three seconds is far from both and from the 0.3 s given.
	select {
	case err := <-done:
		if !errors.Is(err, rbd.ErrTimeout) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the call outlasted its grace (WaitDelay): the escaped child holding its output held the call")
	}
}

// The grace of every real call: long enough for rbd to flush what it
// printed, never zero (that would wait for an escaped child forever).
func TestDefaultWaitDelay(t *testing.T) {
	if rbd.DefaultWaitDelay < time.Second || rbd.DefaultWaitDelay > 10*time.Second {
		t.Errorf("DefaultWaitDelay %s: want a few seconds", rbd.DefaultWaitDelay)
	}
}

func TestSnapshotsAndInfo(t *testing.T) {
	snaps := `[{"id":4,"name":".mirror.non_primary.x.y","size":67108864,"protected":"false","timestamp":"Tue Nov 24 09:06:33 2026",
	"namespace":{"type":"mirror","state":"non-primary","mirror_peer_uuids":[],"complete":true,"primary_mirror_uuid":"c51a","primary_snap_id":5,"last_copied_object_number":16}},
	{"id":6,"name":".mirror.non_primary.x.z","size":67108864,"protected":"false","timestamp":"Tue Nov 24 09:07:33 2026",
	"namespace":{"type":"mirror","state":"non-primary","mirror_peer_uuids":[],"complete":false,"primary_mirror_uuid":"c51a","primary_snap_id":9,"last_copied_object_number":3}},
	{"id":7,"name":"mine","size":67108864,"protected":"false","timestamp":"Tue Nov 24 09:08:00 2026","namespace":{"type":"user"}}]`
	r := &rbdtest.Replay{T: t, Queues: map[string][]rbd.Output{"snap ls": {{Stdout: []byte(snaps)}}, "info": {{Stdout: []byte(`{"name":"img1","size":67108864,"features":["layering"],"mirroring":{"mode":"snapshot","state":"enabled","global_id":"g","primary":false}}`)}}}}
	c := &rbd.Client{Runner: r}
	list, err := c.Snapshots(context.Background(), rbd.Image{Pool: "p", Name: "i"})
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := rbd.LatestMirror(list)
	synced, ok := rbd.LastSyncedCopy(list)
	if latest.ID != 6 || !ok || synced.ID != 4 || synced.Namespace.PrimarySnapID != 5 || synced.Timestamp.Hour() != 9 || synced.Timestamp.Minute() != 6 {
		t.Errorf("latest %+v, synced %+v", latest, synced)
	}
	info, err := c.Info(context.Background(), rbd.Image{Pool: "p", Name: "i"})
	if err != nil || !info.MirrorEnabled() || info.Primary() {
		t.Errorf("info %+v %v", info, err)
	}
}

// Every stage the two-site lab recorded (testdata/lab-<x.y>/README.md), on
// every Ceph release, read the way the steps read it. A stage a release's
// run did not reach by the same name is skipped there; the steady state,
// the relocation and the forced failover are in every recording.
func TestLabStages(t *testing.T) {
	for _, dir := range rbdtest.Releases(t, "testdata") {
		t.Run(filepath.Base(dir), func(t *testing.T) { labStages(t, dir) })
	}
}

func labStages(t *testing.T, dir string) {
	read := func(name string) (rbd.MirrorStatus, bool) {
		t.Helper()
		var s rbd.MirrorStatus
		b, err := os.ReadFile(filepath.Join(dir, name+".status.out"))
		if errors.Is(err, os.ErrNotExist) {
			return s, false
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return s, true
	}
	type view struct{ known, replaying, splitBrain, peerPrimary, peerGone, demotionReplayed bool }
	everywhere := map[string]bool{"s1_replaying.site-b": true, "s1_replaying.site-a": true, "s3_demote_replayed.site-b": true, "s7_b_primary_a_dead.site-b": true}
	for _, c := range []struct {
		stage string
		want  view
	}{
		{"s1_replaying.site-b", view{known: true, replaying: true, peerPrimary: true}},
		{"s1_replaying.site-a", view{known: true}},
		{"s3_demote_replayed.site-b", view{known: true, demotionReplayed: true}},
		// seconds after site-a was killed its records still say it is up and
		// primary: the forced promote must wait for them to go down.
		{"s6_a_killed.site-b", view{known: true, replaying: true, peerPrimary: true}},
		// site-a dead for longer than its rbd-mirror's watch: its record is down.
		{"s6_a_dead_watch_expired.site-b", view{known: true, replaying: true, peerGone: true}},
		{"s7_b_primary_a_dead.site-b", view{known: true, peerGone: true}},
		{"s9_split_brain.site-a", view{known: true, splitBrain: true, peerPrimary: true}},
		{"s10_resync_rc0_down_unknown_status_not_found.site-a", view{}},
		{"s11_resynced.site-a", view{known: true, replaying: true, peerPrimary: true}},
	} {
		s, ok := read(c.stage)
		if !ok {
			if everywhere[c.stage] {
				t.Errorf("%s: no recording of %s", dir, c.stage)
			}
			continue
		}
		peer := len(s.PeerSites) > 0 && s.PeerSites[0].ClaimsPrimary()
		gone := len(s.PeerSites) > 0 && s.PeerSites[0].Gone()
		if got := (view{s.Known(), s.Replaying(), s.SplitBrain(), peer, gone, s.DemotionReplayed()}); got != c.want {
			t.Errorf("%s: read as %+v, want %+v", c.stage, got, c.want)
		}
		if len(s.PeerSites) > 0 && s.PeerSites[0].MirrorUUID == "" {
			t.Errorf("%s: the peer's mirror uuid was not read: %+v", c.stage, s.PeerSites[0])
		}
	}
	// The same report from a daemon that is gone (down+) says nothing:
	// the copy may have moved since.
	if s, ok := read("s3_demote_replayed.site-b"); ok {
		s.State = "down+unknown"
		if s.DemotionReplayed() {
			t.Errorf("a down+ record read as the demotion replayed: %+v", s)
		}
	}
	// rbd-mirror killed mid-copy of the demotion: whatever its record
	// still says (up+replaying on 20.2, down+ on 16.2 and 18.2), never
	// that the demotion replayed.
	if s, ok := read("s5x_copy_partial_mirror_killed.site-b"); ok && s.DemotionReplayed() {
		t.Errorf("a partial copy of the demotion read as replayed: %+v", s)
	}
	// The primary's view of a peer that has copied its newest snapshot.
	a, _ := read("s1_replaying.site-a")
	var snaps []rbd.Snapshot
	b, err := os.ReadFile(filepath.Join(dir, "s1_replaying.site-a.snaps.out"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &snaps); err != nil {
		t.Fatal(err)
	}
	latest, _ := rbd.LatestMirror(snaps)
	if len(a.PeerSites) == 0 || !a.PeerSites[0].HasCopied(latest.Timestamp.Unix()) {
		t.Fatalf("site-b should have copied snapshot %d (%s): %+v", latest.ID, latest.Timestamp, a.PeerSites)
	}
	if a.PeerSites[0].HasCopied(latest.Timestamp.Unix() + 60) {
		t.Error("a snapshot taken later cannot have been copied")
	}
}

// The hook Jobs connect with a key file and the monitors, and no ceph.conf:
// rbd is told so, rather than left to look for /etc/ceph/ceph.conf.
func TestConnWithoutCephConf(t *testing.T) {
	r := rbdtest.Answer(t, rbd.Output{Stdout: []byte(`{"name":"img1"}`)}, "info")
	c := &rbd.Client{Conn: rbd.Conn{ID: "shop", KeyFile: "/etc/rbd-dr/ceph/key", MonHost: "192.0.2.1:6789,192.0.2.2:6789"}, Runner: r}
	_, _ = c.Info(context.Background(), rbd.Image{Pool: "replicapool", Name: "img1"})
	want := []string{"rbd", "--conf", "/dev/null", "--id", "shop", "--keyfile", "/etc/rbd-dr/ceph/key", "--mon_host", "192.0.2.1:6789,192.0.2.2:6789"}
	if calls := r.Argv(); len(calls) != 1 || !slices.Equal(calls[0][:len(want)], want) {
		t.Errorf("argv %v, want it to start with %v", calls, want)
	}
}

func TestImagePlaces(t *testing.T) {
	in := rbd.Image{Pool: "replicapool", Namespace: "shop", Name: "db"}
	out := rbd.Image{Pool: "replicapool", Name: "db"}
	if in.String() != "replicapool/shop/db" || in.Place() != "replicapool/shop" || out.Place() != "replicapool" {
		t.Errorf("%s in %s, %s in %s", in, in.Place(), out, out.Place())
	}
	for place, ok := range map[string]bool{"replicapool": true, "replicapool/shop": true, "replicapool/": false, "/shop": false, "a/b/c": false, "-x": false} {
		pool, ns, err := rbd.ParsePlace(place)
		if (err == nil) != ok || (ok && rbd.Place(pool, ns) != place) {
			t.Errorf("%q: %q %q %v", place, pool, ns, err)
		}
	}
}

func TestNames(t *testing.T) {
	for spec, ok := range map[string]bool{
		"replicapool/csi-vol-1": true, "p.1/i_2": true, "a/" + strings.Repeat("x", 128): true,
		"a/" + strings.Repeat("x", 129): false, "-rf/img": false, "pool/-img": false, "pool/img@snap": false,
		"poolimg": false, "pool/a/b/c": false, "/img": false, "pool/": false, "": false, "pool/.img": false,
		// a RADOS namespace between pool and image
		"replicapool/shop/csi-vol-1": true, "pool//img": false, "pool/-ns/img": false, "pool/ns/": false,
	} {
		img, err := rbd.ParseImage(spec)
		if (err == nil) != ok {
			t.Errorf("%q: %v", spec, err)
		}
		if ok && img.String() != spec {
			t.Errorf("%q reads back as %q", spec, img)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "is not pool/image or pool/namespace/image with valid Ceph names")) {
			t.Errorf("%q: %v", spec, err)
		}
	}
}

// The links a peer keeps on a primary's own snapshots, as recorded.
func TestPeerLinks(t *testing.T) {
	read := func(name string) []rbd.Snapshot {
		t.Helper()
		var snaps []rbd.Snapshot
		if err := json.Unmarshal(rbdtest.Load(t, rbdtest.Dir, name).Stdout, &snaps); err != nil {
			t.Fatal(err)
		}
		return snaps
	}
	for _, c := range []struct {
		name             string
		behind, caughtUp bool
	}{
		// site-b copied snapshot 5 and unlinked itself from 4
		{"s1_replaying.site-a.snaps", false, true},
		// demoted while site-b's rbd-mirror was stopped: still linked to 6
		{"s2_demoted_not_replayed.site-a.snaps", true, false},
		// site-b copied the demote snapshot 8 and unlinked itself from 6
		{"s4_promoted_b.site-a.snaps", false, true},
		// a single own snapshot: cannot tell
		{"s8_a_back_both_primary.site-a.snaps", false, false},
		// no own snapshot at all
		{"s1_replaying.site-b.snaps", false, false},
	} {
		behind, caughtUp := rbd.PeerLinks(read(c.name))
		if behind != c.behind || caughtUp != c.caughtUp {
			t.Errorf("%s: behind %t caught up %t, want %t %t", c.name, behind, caughtUp, c.behind, c.caughtUp)
		}
	}
	// An older snapshot that no peer is linked to and a newest one made for
	// no peer: nothing to tell.
	var a, b rbd.Snapshot
	a.ID, a.Namespace.Type, b.ID, b.Namespace.Type = 1, "mirror", 2, "mirror"
	if behind, caughtUp := rbd.PeerLinks([]rbd.Snapshot{a, b}); behind || caughtUp {
		t.Errorf("no peers: behind %t caught up %t", behind, caughtUp)
	}
	// A peer linked to an older snapshot that is not the newest's peer.
	a.Namespace.MirrorPeerUUIDs, b.Namespace.MirrorPeerUUIDs = []string{"other"}, []string{"p"}
	if behind, caughtUp := rbd.PeerLinks([]rbd.Snapshot{a, b}); behind || !caughtUp {
		t.Errorf("other peer: behind %t caught up %t", behind, caughtUp)
	}

	// The copy of the demote snapshot on the promoting side.
	copies := read("s3_demote_replayed_early.site-b.snaps")
	latest, _ := rbd.LatestMirror(copies)
	if !latest.Copy() || !latest.Demoted() || !latest.Namespace.Complete || latest.Own() {
		t.Errorf("%+v", latest)
	}
	if c, ok := rbd.CopyOf(copies, latest.Namespace.PrimarySnapID); !ok || c.ID != latest.ID {
		t.Errorf("copy of %d: %+v %t", latest.Namespace.PrimarySnapID, c, ok)
	}
	for _, s := range copies {
		if s.Namespace.Type == "trash" && (s.Mirror() || s.Copy() || s.Own()) {
			t.Errorf("a trashed snapshot read as a mirror snapshot: %+v", s)
		}
	}
	own, ok := rbd.LatestOwn(read("s2_demoted_not_replayed.site-a.snaps"))
	if !ok || !own.Demoted() || own.Copy() {
		t.Errorf("%+v", own)
	}
	// site-b copies that demote snapshot: its copy names it.
	if c, ok := rbd.CopyOf(read("s3_demote_replayed_early.site-b.snaps"), own.ID); !ok || !c.Demoted() || !c.Namespace.Complete {
		t.Errorf("site-b's copy of %d: %+v %t", own.ID, c, ok)
	}
	if _, ok := rbd.LatestOwn(copies); ok {
		t.Error("a copy read as own")
	}
}

// fakeRbd writes an executable that prints and exits as told.
func fakeRbd(t *testing.T, script string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rbd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// The process runner: stdout, stderr and the exit code come back as they
// were, with no timeout unless one is set.
func TestExec(t *testing.T) {
	c := &rbd.Client{Conn: rbd.Conn{Binary: fakeRbd(t, `echo '{"mirroring":{"state":"enabled","primary":true}}'; echo warn >&2`)}, Runner: rbd.Exec{}}
	info, err := c.Info(context.Background(), rbd.Image{Pool: "p", Name: "i"})
	if err != nil || !info.Primary() {
		t.Errorf("%+v %v", info, err)
	}
	c.Conn.Binary = fakeRbd(t, `echo 'librbd: image is primary within a remote cluster or demotion is not propagated yet' >&2; exit 16`)
	err = c.Promote(context.Background(), rbd.Image{Pool: "p", Name: "i"}, false, 0)
	var ce *rbd.CmdError
	if !errors.As(err, &ce) || ce.ExitCode != 16 || !errors.Is(err, rbd.ErrNotYet) {
		t.Errorf("%v", err)
	}
	c.Conn.Binary = filepath.Join(t.TempDir(), "missing")
	if err := c.Demote(context.Background(), rbd.Image{Pool: "p", Name: "i"}); err == nil || errors.As(err, &ce) {
		t.Errorf("a binary that cannot run: %v", err)
	}
	c.Conn.Binary = fakeRbd(t, `echo 'not json'`)
	if _, err := c.MirrorStatus(context.Background(), rbd.Image{Pool: "p", Name: "i"}); err == nil || !strings.Contains(err.Error(), "reading its JSON") {
		t.Errorf("%v", err)
	}
	// The client's own call timeout applies when a call names none.
	c = &rbd.Client{Conn: rbd.Conn{Binary: fakeRbd(t, "sleep 30")}, Runner: rbd.Exec{}, CallTimeout: 100 * time.Millisecond}
	if _, err := c.Snapshots(context.Background(), rbd.Image{Pool: "p", Name: "i"}); !errors.Is(err, rbd.ErrTimeout) || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Errorf("%v", err)
	}
	// A caller's cancelled context is not a timeout of rbd's.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Resync(ctx, rbd.Image{Pool: "p", Name: "i"}); err == nil || errors.Is(err, rbd.ErrTimeout) {
		t.Errorf("%v", err)
	}
}

func TestMoreClassification(t *testing.T) {
	for _, c := range []struct {
		err  *rbd.CmdError
		want error
		not  []error
	}{
		{&rbd.CmdError{ExitCode: 22, Stderr: "rbd: mirroring not enabled on the image"}, rbd.ErrNotFound, []error{rbd.ErrNotYet}},
		{&rbd.CmdError{ExitCode: 22, Stderr: "rbd: invalid argument"}, nil, []error{rbd.ErrNotFound, rbd.ErrNotYet, rbd.ErrTimeout}},
		{&rbd.CmdError{ExitCode: 1, Stderr: "open: No such file or directory"}, rbd.ErrNotFound, nil},
		{&rbd.CmdError{ExitCode: 22, Stderr: "image is already non-primary"}, rbd.ErrNotPrimary, []error{rbd.ErrAlreadyPrimary}},
		{&rbd.CmdError{ExitCode: 16, Stderr: "image is busy"}, nil, []error{rbd.ErrNotYet}},
	} {
		if c.want != nil && !errors.Is(c.err, c.want) {
			t.Errorf("%v is not %v", c.err, c.want)
		}
		for _, n := range c.not {
			if errors.Is(c.err, n) {
				t.Errorf("%v read as %v", c.err, n)
			}
		}
	}
	if got := (&rbd.CmdError{Args: []string{"info"}, ExitCode: 1}).Error(); got != "rbd info: exit 1: no message" {
		t.Errorf("%q", got)
	}
	twice := &rbd.CmdError{Args: []string{"info"}, ExitCode: 1, Stderr: "rbd: boom\n2026-11-24T09:07:00.449+0000 7f5f56ffd6c0 -1 rbd: boom\n"}
	if got := twice.Error(); got != "rbd info: exit 1: rbd: boom" {
		t.Errorf("%q", got)
	}
}

func TestPeerHealth(t *testing.T) {
	for _, c := range []struct {
		state, desc           string
		healthy, gone, claims bool
	}{
		{"up+replaying", "replaying", true, false, false},
		{"up+stopped", "local image is primary", true, false, true},
		{"up+error", "split-brain", false, false, false},
		{"down+stopped", "local image is primary", false, true, false},
		{"down+unknown", "status not found", false, false, false},
		{"up+unknown", "status not found", false, false, false},
	} {
		p := rbd.PeerSite{State: c.state, Description: c.desc}
		if p.Healthy() != c.healthy || p.Gone() != c.gone || p.ClaimsPrimary() != c.claims {
			t.Errorf("%s %q: healthy %t gone %t claims %t", c.state, c.desc, p.Healthy(), p.Gone(), p.ClaimsPrimary())
		}
	}
	p := rbd.PeerSite{State: "up+replaying", Description: `replaying, {"local_snapshot_timestamp":100,"remote_snapshot_timestamp":100,"replay_state":"idle"}`}
	if !p.HasCopied(100) || !p.HasCopied(99) || p.HasCopied(101) {
		t.Error("HasCopied misreads the timestamps")
	}
	for _, d := range []string{
		`replaying, {"local_snapshot_timestamp":90,"remote_snapshot_timestamp":100,"replay_state":"idle"}`,
		`replaying, {"local_snapshot_timestamp":100,"remote_snapshot_timestamp":100,"replay_state":"syncing"}`,
		`replaying, not json`, `replaying`,
	} {
		if (rbd.PeerSite{State: "up+replaying", Description: d}).HasCopied(100) {
			t.Errorf("%q read as copied", d)
		}
	}
	if (rbd.PeerSite{State: "up+stopped", Description: p.Description}).HasCopied(100) || (rbd.PeerSite{State: "down+replaying", Description: p.Description}).HasCopied(100) {
		t.Error("a peer that is not replaying read as copied")
	}
}

// A call that times out is killed with everything it started in its process
// group (rbd's own helpers), not only the process itself.
func TestExecKillsTheGroup(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	readPid := func() int {
		b, _ := os.ReadFile(pidfile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	t.Cleanup(func() {
		if pid := readPid(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// The call's time runs out only once the child has written its pid: a
	// timer started before could end the call before the child exists on a
	// loaded machine. The caller's context ends the call here, which kills
	// it as its own timeout does.
	c := &rbd.Client{Conn: rbd.Conn{Binary: fakeRbd(t, "sleep 120 & echo $! > "+pidfile+".tmp; mv "+pidfile+".tmp "+pidfile+"; wait")}, Runner: rbd.Exec{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Demote(ctx, rbd.Image{Pool: "p", Name: "i"}) }()
	pid := 0
	for start := time.Now(); pid == 0 && time.Since(start) < time.Minute; time.Sleep(10 * time.Millisecond) {
		pid = readPid()
	}
	if pid == 0 {
		t.Fatal("the child's pid was not written within a minute")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	// Killed means gone, or a zombie nobody reaped yet.
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
	}
	t.Errorf("the child %d outlived the call", pid)
}

// Every state the lab recorded with both rbd info and snap ls: the role read
// from the snapshots is the one rbd info gives (the steps that list the
// snapshots anyway skip rbd info on it).
func TestPrimaryFromSnapshotsAgreesWithInfoOnTheLab(t *testing.T) {
	infos, err := filepath.Glob(filepath.Join("testdata", "lab-*", "*.info.out"))
	if err != nil || len(infos) == 0 {
		t.Fatalf("no info recordings: %v", err)
	}
	compared, primaries := 0, 0
	for _, path := range infos {
		name := strings.TrimSuffix(filepath.Base(path), ".info.out")
		dir := filepath.Dir(path)
		infoOut, snapsOut := rbdtest.Load(t, dir, name+".info"), rbdtest.Load(t, dir, name+".snaps")
		if infoOut.ExitCode != 0 || snapsOut.ExitCode != 0 {
			continue // the image was being recreated
		}
		var info rbd.Info
		var snaps []rbd.Snapshot
		if err := json.Unmarshal(infoOut.Stdout, &info); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := json.Unmarshal(snapsOut.Stdout, &snaps); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		primary, ok := rbd.PrimaryFromSnapshots(snaps)
		if !ok {
			continue
		}
		compared++
		if primary {
			primaries++
		}
		if primary != info.Primary() {
			t.Errorf("%s: the snapshots say primary=%t, rbd info %t", name, primary, info.Primary())
		}
	}
	if compared < 20 || primaries == 0 || primaries == compared {
		t.Errorf("compared %d states (%d primary): the recordings should hold both roles", compared, primaries)
	}
}

// A call cut short by the caller's earlier deadline says how long it had,
// not the client's longer call timeout.
func TestTimeoutNamesTheDeadlineThatCame(t *testing.T) {
	bin := fakeRbd(t, "sleep 30")
	// a longer call timeout, and none at all
	for _, callTimeout := range []time.Duration{2 * time.Minute, 0} {
		c := &rbd.Client{Conn: rbd.Conn{Binary: bin}, Runner: rbd.Exec{}, CallTimeout: callTimeout}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		if _, err := c.Snapshots(ctx, rbd.Image{Pool: "p", Name: "i"}); !errors.Is(err, rbd.ErrTimeout) || !regexp.MustCompile(`timed out after [123]00ms$`).MatchString(err.Error()) {
			t.Errorf("call timeout %s: %v", callTimeout, err)
		}
		cancel()
	}
}

// The peer's mirror uuid is mirror_uuids up to Reef and mirror_uuid from
// Tentacle (both as the lab printed them); either is read, and peers with
// no site name are still told apart by it.
func TestPeerMirrorUUIDOfEveryRelease(t *testing.T) {
	for release, doc := range map[string]string{
		"16.2.15": `{"site_name":"site-b","mirror_uuids":"a5727690-3138-459b-95cb-42164c1a7ffd","state":"up+replaying","description":"replaying"}`,
		"20.2.4":  `{"site_name":"site-b","mirror_uuid":"a5727690-3138-459b-95cb-42164c1a7ffd","state":"up+replaying","description":"replaying"}`,
	} {
		var p rbd.PeerSite
		if err := json.Unmarshal([]byte(doc), &p); err != nil || p.MirrorUUID != "a5727690-3138-459b-95cb-42164c1a7ffd" || p.SiteName != "site-b" || !p.Known() {
			t.Errorf("%s: %+v %v", release, p, err)
		}
	}
	var p rbd.PeerSite
	if err := json.Unmarshal([]byte(`{"site_name":"x","mirror_uuid":"new","mirror_uuids":"old"}`), &p); err != nil || p.MirrorUUID != "new" {
		t.Errorf("both keys: %+v %v", p, err)
	}
}

// A demote that must break a gone client's lock, as a user who may not
// blocklist (what Ceph 20.2 printed in the full loop), reads as
// ErrLockHolderGone, and as ErrDenied; other refusals are not the former.
func TestLockHolderGone(t *testing.T) {
	gone := &rbd.CmdError{Args: []string{"mirror", "image", "demote"}, ExitCode: 13,
		Stderr: "2026-12-06T02:06:54.123+0000 7f5f56ffd6c0 -1 librbd::managed_lock::BreakRequest: 0x5588799ed590 handle_blocklist: failed to blocklist lock owner: (13) Permission denied"}
	if !errors.Is(gone, rbd.ErrLockHolderGone) || !errors.Is(gone, rbd.ErrDenied) {
		t.Errorf("%v is not ErrLockHolderGone and ErrDenied", gone)
	}
	if !strings.Contains(gone.Error(), "librbd::managed_lock::BreakRequest: handle_blocklist: failed to blocklist lock owner: (13) Permission denied") {
		t.Errorf("the message lost rbd's words: %v", gone)
	}
	denied := &rbd.CmdError{ExitCode: 13, Stderr: "rbd: error opening image img2: (13) Permission denied"}
	if errors.Is(denied, rbd.ErrLockHolderGone) {
		t.Errorf("%v read as a gone lock holder", denied)
	}
}

// A forced promote compares the image's lock holders with the rbd-mirror
// that reports the image: `rbd lock ls` as Ceph 16.2 and 20.2 print it (the
// lab, an rbd-mirror holding a non-primary image) and the status's
// daemon_service.
func TestLockersAndTheDaemonOfAStatus(t *testing.T) {
	held := rbd.Output{Stdout: []byte(`[{"id":"auto 94594378923904","locker":"client.4146","address":"127.0.0.1:0/3761145153"}]` + "\n")}
	r := &rbdtest.Replay{T: t, Queues: map[string][]rbd.Output{
		"mirror image status": {rbdtest.Load(t, rbdtest.Dir, "s4_promoted_b.site-b.status")},
		"lock ls":             {held, {Stdout: []byte("[]\n")}, {Stdout: []byte("not json")}},
	}}
	c := &rbd.Client{Runner: r}
	img := rbd.Image{Pool: "replicapool", Namespace: "team", Name: "img1"}
	st, err := c.MirrorStatus(context.Background(), img)
	if err != nil || st.Daemon.Client() != "client.4563" || st.Daemon.Hostname != "vm" || st.Daemon.DaemonID != "b" {
		t.Errorf("daemon %+v (%v)", st.Daemon, err)
	}
	for state, works := range map[string]bool{"up+replaying": true, "up+syncing": true, "up+starting_replay": true, "up+stopping_replay": true,
		"up+stopped": false, "up+error": false, "down+replaying": false, "up+unknown": false} {
		if got := (rbd.MirrorStatus{State: state}).Replayer(); got != works {
			t.Errorf("%s: the daemon works the image: %v, want %v", state, got, works)
		}
	}
	if c := (rbd.MirrorDaemon{}).Client(); c != "" {
		t.Errorf("a status without a daemon names client %q", c)
	}
	lockers, err := c.Lockers(context.Background(), img)
	if err != nil || len(lockers) != 1 || lockers[0] != (rbd.Locker{ID: "auto 94594378923904", Locker: "client.4146", Address: "127.0.0.1:0/3761145153"}) {
		t.Errorf("%+v (%v)", lockers, err)
	}
	if argv := r.Argv()[1]; strings.Join(argv, " ") != "rbd lock ls replicapool/team/img1 --format json" {
		t.Errorf("ran %q", argv)
	}
	if lockers, err := c.Lockers(context.Background(), img); err != nil || len(lockers) != 0 {
		t.Errorf("nobody holds it: %+v (%v)", lockers, err)
	}
	if _, err := c.Lockers(context.Background(), img); err == nil || !strings.Contains(err.Error(), "rbd lock ls replicapool/team/img1: reading its JSON") {
		t.Errorf("unreadable: %v", err)
	}
}

// A forced promote cut off after its first mark leaves an orphan snapshot
// newest: non-primary, no peer's uuid (the 20.2 lab: `mirror (non-primary
// peer_uuids:[] :18446744073709551614 copied)`). librbd reads the image as
// non-primary then; so must the steps, or a retry would skip the promote.
func TestOrphanSnapshotIsNotPrimary(t *testing.T) {
	var snaps []rbd.Snapshot
	if err := json.Unmarshal([]byte(`[
	 {"id":3,"name":".mirror.non_primary.g.c1","namespace":{"type":"mirror","state":"non-primary","mirror_peer_uuids":[],"complete":true,"primary_mirror_uuid":"479538ee","primary_snap_id":3}},
	 {"id":5,"name":".mirror.non_primary.g.o1","namespace":{"type":"mirror","state":"non-primary","mirror_peer_uuids":[],"complete":true,"primary_mirror_uuid":"","primary_snap_id":18446744073709551614}}]`), &snaps); err != nil {
		t.Fatal(err)
	}
	if snaps[1].Own() || snaps[1].Copy() {
		t.Errorf("the orphan snapshot read as own %v, copy %v", snaps[1].Own(), snaps[1].Copy())
	}
	if primary, ok := rbd.PrimaryFromSnapshots(snaps); primary || !ok {
		t.Errorf("an image whose newest mirror snapshot is an orphan: primary %v (ok %v)", primary, ok)
	}
	own := snaps[1]
	own.Namespace.State = "primary"
	if !own.Own() {
		t.Error("a primary snapshot without a peer's uuid is this site's own")
	}
}
