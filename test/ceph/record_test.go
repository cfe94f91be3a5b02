package ceph

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/internal/cephlab"
	"github.com/rbd-dr/argocd-rbd-dr/internal/rbdtest"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// TestRecord is the suite's record mode: with RBD_DR_RECORD=TESTDATA (make
// record) it walks one image through a planned relocation, a demotion whose
// copy is cut by an rbd-mirror restart, a forced failover and the return of
// the lost site, on the fresh lab TestMain brought up, and keeps what rbd
// printed at each stage in DIR, TESTDATA/lab-<x.y> for the Ceph release
// x.y the lab runs (pkg/rbd/testdata/lab-16.2 and so on), with a README.md
// listing them: the recordings the unit tests replay through
// internal/rbdtest. It writes DIR.new and replaces DIR only when the whole
// run succeeded. TestScenarios skips in this mode, so the lab is fresh.
func TestRecord(t *testing.T) {
	testdata := os.Getenv("RBD_DR_RECORD")
	if testdata == "" || os.Getenv("RBD_DR_E2E_CEPH") != "1" {
		t.Skip("set RBD_DR_RECORD=TESTDATA and RBD_DR_E2E_CEPH=1 (make record)")
	}
	out := filepath.Join(testdata, rbdtest.ReleaseDir(cephVersion))
	r := &recorder{t: t, dir: out + ".new", img: pool + "/img1"}
	if err := os.RemoveAll(r.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.script()
	if err := os.WriteFile(filepath.Join(r.dir, "README.md"), []byte(r.readme()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, ".gitignore"), []byte("# the recordings keep stdout in NAME.out, which the root .gitignore ignores\n!*.out\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(r.dir, out); err != nil {
		t.Fatal(err)
	}
	t.Logf("recordings in %s", out)
}

const (
	a = "site-a"
	b = "site-b"
)

type recorder struct {
	t            *testing.T
	dir, img     string
	stages, acts [][]string // README rows
	times        [][2]string
}

// rbd runs rbd against a site and returns what it printed, whatever the exit.
func (r *recorder) rbd(site string, args ...string) rbd.Output {
	c := conns[site]
	argv := append([]string{"rbd", "--conf", c.Conf, "--id", c.ID, "--keyring", c.Keyring}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := rbd.Exec{}.Run(ctx, argv)
	if err != nil {
		r.t.Fatalf("rbd %s on %s: %v", strings.Join(args, " "), site, err)
	}
	return out
}

func (r *recorder) rec(name, site string, args ...string) rbd.Output {
	out := r.rbd(site, args...)
	if err := rbdtest.Write(r.dir, name, out); err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("recorded %s (exit %d)", name, out.ExitCode)
	return out
}

// act records a command that changes something and checks its exit code.
func (r *recorder) act(name, site, what string, want int, args ...string) {
	out := r.rec(name, site, args...)
	r.acts = append(r.acts, []string{name, site, "rbd " + strings.Join(args, " "), what, strconv.Itoa(out.ExitCode)})
	if want >= 0 && out.ExitCode != want {
		r.t.Fatalf("%s exited %d, wanted %d: %s", name, out.ExitCode, want, out.Stderr)
	}
}

// stage records the three read commands on each site.
func (r *recorder) stage(name, what string, sites ...string) {
	var codes []string
	for _, s := range sites {
		i := r.rec(name+"."+s+".info", s, "info", "--format", "json", r.img)
		st := r.rec(name+"."+s+".status", s, "mirror", "image", "status", r.img, "--format", "json")
		sn := r.rec(name+"."+s+".snaps", s, "snap", "ls", "--all", "--format", "json", r.img)
		codes = append(codes, fmt.Sprintf("%s %d/%d/%d", strings.TrimPrefix(s, "site-"), i.ExitCode, st.ExitCode, sn.ExitCode))
	}
	r.stages = append(r.stages, []string{name, strings.Join(sites, ", "), what, strings.Join(codes, ", ")})
}

func (r *recorder) timing(what string, d time.Duration) {
	r.times = append(r.times, [2]string{what, fmt.Sprintf("%.1f", d.Seconds())})
}

// waitFor polls cond every 0.1 s.
func (r *recorder) waitFor(timeout time.Duration, what string, cond func() bool) {
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			r.t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Logf("%s (%.1f s)", what, time.Since(start).Seconds())
}

func (r *recorder) snaps(site string) []rbd.Snapshot {
	snaps, _ := client(site).Snapshots(context.Background(), image(r.img))
	return snaps
}

// synced: dst holds a complete copy of src's newest own snapshot.
func (r *recorder) synced(src, dst string) func() bool {
	return func() bool {
		own, ok := rbd.LatestOwn(r.snaps(src))
		c, copied := rbd.CopyOf(r.snaps(dst), own.ID)
		return ok && copied && c.Namespace.Complete
	}
}

// demoteArrived: dst's newest mirror snapshot is a complete copy of a demotion.
func (r *recorder) demoteArrived(dst string) func() bool {
	return func() bool {
		s, ok := rbd.LatestMirror(r.snaps(dst))
		return ok && s.Copy() && s.Demoted() && s.Namespace.Complete
	}
}

func (r *recorder) statusIs(site, state, desc string) func() bool {
	return func() bool {
		st, err := client(site).MirrorStatus(context.Background(), image(r.img))
		return err == nil && regexp.MustCompile("^(?:"+state+")$").MatchString(st.State) && regexp.MustCompile(desc).MatchString(st.Description)
	}
}

// reads: site's mirror status reads as our code reads it, replaying or not,
// and with its first peer claiming primary or not.
func (r *recorder) reads(site string, replaying, peerPrimary bool) func() bool {
	return func() bool {
		st, err := client(site).MirrorStatus(context.Background(), image(r.img))
		peer := err == nil && len(st.PeerSites) > 0 && st.PeerSites[0].ClaimsPrimary()
		return err == nil && st.Replaying() == replaying && peer == peerPrimary
	}
}

// peerHasCopied: site's record of its first peer says the peer replayed
// site's newest mirror snapshot (rbd.PeerSite.HasCopied).
func (r *recorder) peerHasCopied(site string) func() bool {
	return func() bool {
		newest, ok := rbd.LatestMirror(r.snaps(site))
		st, err := client(site).MirrorStatus(context.Background(), image(r.img))
		return ok && err == nil && len(st.PeerSites) > 0 && st.PeerSites[0].HasCopied(newest.Timestamp.Unix())
	}
}

func (r *recorder) write(site string, mib int) {
	rbdCmd(r.t, site, "bench", "--io-type", "write", "--io-size", "64K", "--io-total", fmt.Sprintf("%dM", mib), "--io-pattern", "rand", r.img)
}

func (r *recorder) snapshot(site string) { rbdCmd(r.t, site, "mirror", "image", "snapshot", r.img) }

func (r *recorder) sameData() {
	if ca, cb := checksum(r.t, a, r.img), checksum(r.t, b, r.img); ca != cb {
		r.t.Fatalf("data differs: site-a %s, site-b %s", ca, cb)
	}
}

func (r *recorder) lab(args ...string) {
	if _, err := lab.Run(args...); err != nil {
		r.t.Fatal(err)
	}
}

// promoteRace demotes on from and promotes on to in a tight loop, keeping
// the first answer of each failing exit code as s5_promote_early_rcN.
func (r *recorder) promoteRace(from, to string) (time.Duration, []int) {
	rbdCmd(r.t, from, "mirror", "image", "demote", r.img)
	start := time.Now()
	var fails []int
	for {
		out := r.rbd(to, "mirror", "image", "promote", r.img)
		if out.ExitCode == 0 {
			return time.Since(start), fails
		}
		name := fmt.Sprintf("s5_promote_early_rc%d", out.ExitCode)
		if _, err := os.Stat(filepath.Join(r.dir, name+".rc")); err != nil {
			if err := rbdtest.Write(r.dir, name, out); err != nil {
				r.t.Fatal(err)
			}
			r.acts = append(r.acts, []string{name, to, "rbd mirror image promote " + r.img,
				fmt.Sprintf("non-forced promote on %s issued in a tight loop right after %s demoted: first answer with exit %d", to, from, out.ExitCode), strconv.Itoa(out.ExitCode)})
		}
		fails = append(fails, out.ExitCode)
		if time.Since(start) > 90*time.Second {
			r.t.Fatalf("promote on %s still failing after 90 s", to)
		}
	}
}

func (r *recorder) script() {
	img := r.img
	// s1: a primary, b a replaying copy
	rbdCmd(r.t, a, "create", img, "--size", "64M", "--image-feature", "layering,exclusive-lock")
	rbdCmd(r.t, a, "mirror", "image", "enable", img, "snapshot")
	r.write(a, 1)
	r.snapshot(a)
	r.waitFor(time.Minute, "b holds a's newest snapshot", r.synced(a, b))
	r.waitFor(time.Minute, "b reports up+replaying", r.statusIs(b, `up\+replaying`, ""))
	r.waitFor(time.Minute, "a reports up+stopped", r.statusIs(a, `up\+stopped`, ""))
	// Tentacle reports up+replaying before its description holds the
	// copied snapshot's timestamp: the stage is the steady state after it.
	r.waitFor(time.Minute, "b reads as replaying a's snapshots, a as its primary peer", r.reads(b, true, true))
	// Tentacle's record of a synced snapshot has no local_snapshot_timestamp
	// until its next status update (up to rbd-mirror's 30 s timer): the
	// stage is once a's view of b says the copy is there.
	r.waitFor(2*time.Minute, "a's record of b holds the copy of a's newest snapshot", r.peerHasCopied(a))
	r.sameData()
	r.stage("s1_replaying", "a primary, b a healthy non-primary copy replaying a's snapshots", a, b)
	r.act("s1_promote_b_while_a_primary", b, "non-forced promote on b while a is primary", 16, "mirror", "image", "promote", img)

	// s2: planned relocation a -> b, b's rbd-mirror stopped so the demotion cannot replay yet
	r.write(a, 1)
	r.snapshot(a)
	r.waitFor(time.Minute, "b holds a's newest snapshot", r.synced(a, b))
	r.lab("stop", b, "rbd-mirror")
	r.waitFor(time.Minute, "b reports down (its rbd-mirror stopped)", r.statusIs(b, `down\+.*`, ""))
	start := time.Now()
	r.act("s2_demote_a", a, "demote a (b's rbd-mirror is stopped)", 0, "mirror", "image", "demote", img)
	r.waitFor(time.Minute, "a reports its image is no longer primary", r.statusIs(a, `up\+.*`, "not primary|demoted"))
	r.stage("s2_demoted_not_replayed", "a demoted while b's rbd-mirror is stopped: the demotion has not reached b (b's status is down and stale)", a, b)
	r.act("s2_promote_b_before_replay", b, "non-forced promote on b after a demoted, before the demotion replayed to b", 16, "mirror", "image", "promote", img)

	// s3: the demotion replays
	r.lab("start", b)
	r.waitFor(time.Minute, "the demotion replayed to b (snapshots)", r.demoteArrived(b))
	r.stage("s3_demote_replayed_early", "the demotion replayed to b by its snapshots (a complete non-primary demoted snapshot); status text may still lag (up to 30 s)", a, b)
	r.waitFor(time.Minute, "b's status says the remote image is demoted", r.statusIs(b, `up\+.*`, "demoted"))
	r.waitFor(time.Minute, "a's status says the remote image is not primary", r.statusIs(a, `up\+.*`, "not primary"))
	r.stage("s3_demote_replayed", "the demotion replayed and both statuses say so: the moment a non-forced promote on b succeeds", a, b)
	r.act("s3_promote_b", b, "non-forced promote on b once a's demotion replayed", 0, "mirror", "image", "promote", img)
	r.timing("staged relocation a->b, demote to promote (includes restarting b's rbd-mirror and the status waits), s", time.Since(start))

	// s4: b is primary
	r.stage("s4_promoted_b", "right after b's promote: b primary, a not yet replaying from b", a, b)
	r.write(b, 1)
	r.snapshot(b)
	r.waitFor(time.Minute, "a holds b's newest snapshot", r.synced(b, a))
	r.waitFor(time.Minute, "a reports up+replaying", r.statusIs(a, `up\+replaying`, ""))
	r.stage("s4_b_primary_replaying", "relocation done: b primary, a a healthy non-primary copy replaying b's snapshots", a, b)
	r.sameData()

	// s5: quick relocations back and forth, promoting in a tight loop right
	// after the demotion, until a promote failed with exit 30 or 6 rounds.
	from, to := b, a
	for round := 1; round <= 6; round++ {
		r.write(from, 1)
		r.snapshot(from)
		r.waitFor(time.Minute, to+" holds "+from+"'s newest snapshot", r.synced(from, to))
		start := time.Now()
		took, fails := r.promoteRace(from, to)
		r.waitFor(90*time.Second, from+" holds "+to+"'s newest snapshot", r.synced(to, from))
		r.timing(fmt.Sprintf("relocation %s->%s round %d: demote to promote (promote in a tight loop failed %d times: %v), s", from, to, round, len(fails), fails), took)
		r.timing(fmt.Sprintf("relocation %s->%s round %d: demote to the old primary holding the new primary's snapshot, s", from, to, round), time.Since(start))
		r.sameData()
		from, to = to, from
		if _, err := os.Stat(filepath.Join(r.dir, "s5_promote_early_rc30.rc")); err == nil {
			break
		}
	}
	if from == b {
		r.promoteRace(b, a)
		r.waitFor(90*time.Second, "b holds a's newest snapshot", r.synced(a, b))
	}
	r.waitFor(time.Minute, "b reports up+replaying", r.statusIs(b, `up\+replaying`, ""))

	// s5x: a demotion whose copy rbd-mirror is cut off in the middle of.
	r.demoteCut()

	// s6/s7: disaster: site-a is lost (SIGKILL of all its daemons), b is force-promoted
	r.write(a, 1)
	r.snapshot(a)
	r.waitFor(time.Minute, "b holds a's newest snapshot", r.synced(a, b))
	r.sameData()
	r.lab("kill", a)
	r.stage("s6_a_killed", "every daemon of site-a killed with SIGKILL; b still non-primary", b)
	r.act("s6_site-a_unreachable.site-a.status", a, "rbd against the dead site, with --client_mount_timeout 5", -1,
		"--client_mount_timeout", "5", "mirror", "image", "status", img, "--format", "json")
	r.act("s6_promote_b_peer_dead", b, "non-forced promote on b while a is dead (a never demoted)", 16, "mirror", "image", "promote", img)
	r.waitFor(time.Minute, "a's record on b is down (its rbd-mirror's watch expired)", func() bool {
		st, err := client(b).MirrorStatus(context.Background(), image(img))
		return err == nil && len(st.PeerSites) > 0 && st.PeerSites[0].Gone()
	})
	r.stage("s6_a_dead_watch_expired", "site-a dead longer than its rbd-mirror's watch timeout (15 s in the lab): its record on b is down+", b)
	start = time.Now()
	r.act("s7_force_promote_b", b, "forced promote on b with a dead", 0, "mirror", "image", "promote", "--force", img)
	r.timing("forced promote on b (a dead), s", time.Since(start))
	r.stage("s7_after_force_promote", "right after b's forced promote, a still dead", b)
	r.write(b, 1)
	r.snapshot(b)
	r.t.Log("waiting 35 s (longer than rbd-mirror's 30 s status timer)")
	time.Sleep(35 * time.Second)
	r.stage("s7_b_primary_a_dead", "35 s after b's forced promote and a new write and mirror snapshot on b, a still dead: b's replayer cannot finish stopping while the peer is gone, so its status stays stopping_replay", b)

	// s8: a comes back: both primary
	r.lab("start", a)
	r.stage("s8_a_back_both_primary", "site-a restarted: a's stale image and b's are both primary", a, b)
	r.waitFor(time.Minute, "a's status up again", r.statusIs(a, `up\+.*`, ""))
	r.stage("s8_both_primary_settled", "both primary, a's rbd-mirror running again (no split-brain flag: nothing replays between two primaries)", a, b)
	r.act("s8_demote_a", a, "demote a's stale primary (what the plugin's passive-site hook does after a forced failover)", 0, "mirror", "image", "demote", img)

	// s9: split-brain
	r.stage("s9_demoted_stale_primary", "right after demoting a's stale primary", a, b)
	r.waitFor(90*time.Second, "a reports split-brain", r.statusIs(a, `up\+error`, "split-brain"))
	r.stage("s9_split_brain", "a demoted but its history diverged from b's: a up+error split-brain", a, b)
	r.act("s9_resync_a", a, "request a resync of a from the primary b", 0, "mirror", "image", "resync", img)

	// s10: resync: poll a as fast as possible and keep each distinct answer
	start = time.Now()
	seen := map[string]bool{}
	for {
		out := r.rbd(a, "mirror", "image", "status", img, "--format", "json")
		key := fmt.Sprintf("rc%d", out.ExitCode)
		var st rbd.MirrorStatus
		if out.ExitCode == 0 && jsonOK(out.Stdout, &st) {
			key += " " + st.State + " " + strings.Split(st.Description, ",")[0]
		}
		if !seen[key] {
			seen[key] = true
			name := "s10_resync_" + regexp.MustCompile(`[^a-z0-9]`).ReplaceAllString(key, "_")
			if err := rbdtest.Write(r.dir, name+".site-a.status", out); err != nil {
				r.t.Fatal(err)
			}
			i := r.rec(name+".site-a.info", a, "info", "--format", "json", img)
			sn := r.rec(name+".site-a.snaps", a, "snap", "ls", "--all", "--format", "json", img)
			r.stages = append(r.stages, []string{name, a, fmt.Sprintf("during the resync of a, %.1f s after the request: status answer #%d (%s), then info and snaps", time.Since(start).Seconds(), len(seen), key),
				fmt.Sprintf("a %d/%d/%d", i.ExitCode, out.ExitCode, sn.ExitCode)})
		}
		if key == "rc0 up+replaying replaying" && r.synced(b, a)() {
			break
		}
		if time.Since(start) > 2*time.Minute {
			r.t.Fatalf("resync of a did not finish in 120 s (answers: %v)", seen)
		}
	}
	r.timing("resync of a, request to replaying with b's newest snapshot, s", time.Since(start))

	// s11: resynced. Tentacle has a's record of its peer b ("status not
	// found") for a while after the resync: the stage is once it has.
	r.waitFor(time.Minute, "a reads as replaying b's snapshots, b as its primary peer", r.reads(a, true, true))
	r.stage("s11_resynced", "a resynced from b: b primary, a replaying", a, b)
	r.sameData()
}

// demoteCut demotes a second, larger image (img2, 1 GiB with 512 MiB
// written since its last mirror snapshot, so the copy takes seconds) and
// kills b's rbd-mirror in the middle of copying the demote snapshot, then
// starts it again and records whether the copy completes (Pacific can hang
// here). img2 is left as it ends; the later stages use img1.
func (r *recorder) demoteCut() {
	c := *r
	c.img = pool + "/img2"
	img := c.img
	rbdCmd(r.t, a, "create", img, "--size", "1G", "--image-feature", "layering,exclusive-lock")
	rbdCmd(r.t, a, "mirror", "image", "enable", img, "snapshot")
	c.waitFor(2*time.Minute, "b holds a's first snapshot of img2", c.synced(a, b))
	c.write(a, 512)
	c.act("s5x_demote_a", a, "demote a's img2 (1 GiB) with 512 MiB written since its last mirror snapshot", 0, "mirror", "image", "demote", img)
	c.waitFor(time.Minute, "b is copying a's demote snapshot", func() bool {
		s, ok := rbd.LatestMirror(c.snaps(b))
		return ok && s.Copy() && s.Demoted() && !s.Namespace.Complete
	})
	c.lab("kill", b, "rbd-mirror")
	c.stage("s5x_copy_partial_mirror_killed", "img2: b's rbd-mirror killed while its copy of a's demote snapshot was partial (complete: false)", a, b)
	c.act("s5x_promote_b_partial", b, "non-forced promote of img2 on b while its copy of the demote snapshot is partial", -1, "mirror", "image", "promote", img)
	c.lab("start", b)
	start := time.Now()
	arrived := false
	for time.Since(start) < 90*time.Second {
		if arrived = c.demoteArrived(b)(); arrived {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.stage("s5x_after_restart", fmt.Sprintf("img2: b's rbd-mirror started again: the copy of the demote snapshot completed: %t (waited %.0f s)", arrived, time.Since(start).Seconds()), a, b)
	if arrived {
		c.timing("copy of img2's cut demote snapshot completing after b's rbd-mirror restarted, s", time.Since(start))
		c.act("s5x_promote_b", b, "non-forced promote of img2 on b once the cut copy completed", -1, "mirror", "image", "promote", img)
	}
	r.stages, r.acts, r.times = c.stages, c.acts, c.times
	r.waitFor(time.Minute, "b reports up+replaying for img1", r.statusIs(b, `up\+replaying`, ""))
}

func jsonOK(b []byte, v any) bool { return json.Unmarshal(b, v) == nil }

func (r *recorder) readme() string {
	var s strings.Builder
	osName := "Linux"
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		if m := regexp.MustCompile(`(?m)^PRETTY_NAME="?([^"\n]*)`).FindSubmatch(b); m != nil {
			osName = string(m[1])
		}
	}
	if suite := os.Getenv("RBD_DR_CEPH_SUITE"); suite != "" && suite != cephlab.HostSuite {
		osName += ", with the Ceph of Debian " + suite + " run from a hack/ceph-root folder"
	}
	ver, _ := exec.Command("ceph", "--version").Output() // the release's own, root or host
	fmt.Fprintf(&s, readmeHead, osName, strings.TrimSpace(string(ver)), time.Now().UTC().Format("2006-01-02"))
	for _, row := range r.stages {
		fmt.Fprintf(&s, "| %s |\n", strings.Join(row, " | "))
	}
	s.WriteString("\n## Commands that change something (and a few single ones)\n\n| file | site | command | what | exit |\n| --- | --- | --- | --- | --- |\n")
	for _, row := range r.acts {
		row[2] = "`" + row[2] + "`"
		fmt.Fprintf(&s, "| %s |\n", strings.Join(row, " | "))
	}
	s.WriteString("\n## Times measured in this run\n\n| what | value |\n| --- | --- |\n")
	for _, row := range r.times {
		fmt.Fprintf(&s, "| %s | %s |\n", row[0], row[1])
	}
	return s.String()
}

const readmeHead = "# Recordings of Ceph's rbd CLI from hack/ceph-lab\n\n" +
	"Made by the Ceph suite's record mode (`make record`: test/ceph's TestRecord; it brings up a fresh\n" +
	"`hack/ceph-lab` and takes it down again) on %s,\n%s, on %s.\n" +
	"Two one-node clusters, site-a and site-b, pool `replicapool`, image `img1`\n" +
	"(64 MiB, layering + exclusive-lock), snapshot-based mirroring, one rbd-mirror per site.\n" +
	"Every command was run with `rbd --conf <site conf>` (client.admin).\n\n" +
	"Each recording is three files: `NAME.out` (stdout), `NAME.err` (stderr) and\n" +
	"`NAME.rc` (exit code); the unit tests replay them with internal/rbdtest. Names are\n" +
	"`<stage>.<site>.<what>` for the read commands\n\n" +
	"| what | command |\n| --- | --- |\n" +
	"| info | `rbd info --format json replicapool/img1` |\n" +
	"| status | `rbd mirror image status replicapool/img1 --format json` |\n" +
	"| snaps | `rbd snap ls --all --format json replicapool/img1` |\n\n" +
	"and `<stage>_<action>` for the commands that change something, named after what\n" +
	"they do (`s2_demote_a` demotes on site-a); the table names the site.\n\n" +
	"Things to know when reading them:\n" +
	"- rbd-mirror rewrites the status text on a fixed 30 s timer (UPDATE_INTERVAL_SECONDS in\n" +
	"  MirrorStatusUpdater.cc, not configurable) besides a few immediate updates (a state\n" +
	"  change such as a demotion), so the replay details of `mirror image status` lag and can\n" +
	"  be stale (a restarted site first shows its pre-crash status, e.g. down+stopped); judge\n" +
	"  replication from `snap ls --all`: a `.mirror.non_primary.*` snapshot with\n" +
	"  `complete: true` whose `primary_snap_id` is the peer's newest `.mirror.primary.*` id.\n" +
	"- On the primary, each own mirror snapshot lists in `mirror_peer_uuids` the peers still\n" +
	"  linked to it: a peer unlinks itself from the older snapshot the moment its copy of\n" +
	"  the newer one completes (s1_replaying.site-a, s4_promoted_b.site-a), and stays linked\n" +
	"  while it is behind (s2_demoted_not_replayed.site-a).\n" +
	"- In `snap ls --all` JSON the mirror namespace `state` is `primary`, `non-primary`\n" +
	"  or `demoted` (for a demotion snapshot on either side: the primary's own has no\n" +
	"  `primary_mirror_uuid`, the copy on the peer has one); a copy in progress has\n" +
	"  `complete: false` and `last_copied_object_number`. Other namespaces show up\n" +
	"  too (`\"type\": \"trash\"` for a mirror snapshot being removed): filter on\n" +
	"  `namespace.type == \"mirror\"`.\n" +
	"- A non-forced promote fails with exit 16 (EBUSY, \"image is primary within a remote\n" +
	"  cluster or demotion is not propagated yet\") while the peer is primary, before its\n" +
	"  demotion replayed, or when the peer died without demoting; right after the demotion\n" +
	"  arrived it can fail for a second or two with exit 30 (EROFS, \"Read-only file system\"),\n" +
	"  even after the demoted snapshot on the promoting side showed `complete: true`:\n" +
	"  retry both.\n" +
	"- A dead site's record in the survivor's status stays `up+stopped` \"local image is\n" +
	"  primary\" until its rbd-mirror's watch expires (osd_client_watch_timeout), then `down+`.\n" +
	"  After a forced promote while the peer is dead, the status stays\n" +
	"  `up+stopping_replay` \"orphan (force promoting)\" until the peer is back.\n" +
	"- After demoting the stale primary that a forced failover left behind, the status\n" +
	"  turns `up+error` \"split-brain\" within seconds; `resync` then deletes and\n" +
	"  re-creates the image: meanwhile `status` may exit 22 (\"mirroring not enabled on\n" +
	"  the image\") or 2 (ENOENT), `info` and `snap ls` exit 2, and then status answers\n" +
	"  `down+unknown` \"status not found\" until the first sync.\n" +
	"- `rbd` against a dead site waits `client_mount_timeout` (300 s by default) and\n" +
	"  then exits 110; s6_site-a_unreachable used `--client_mount_timeout 5`.\n\n" +
	"## Stages\n\nFiles `<stage>.<site>.info`, `.status` and `.snaps` (each .out, .err, .rc).\n\n" +
	"| stage | sites | what had happened | exit codes info/status/snaps |\n| --- | --- | --- | --- |\n"
