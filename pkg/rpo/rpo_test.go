package rpo_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rpo"
)

// recording decodes pkg/rbd/testdata/rpo/NAME: real Ceph 16.2 output.
func recording(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "rbd", "testdata", "rpo", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

var img2 = rbd.Image{Pool: "replicapool", Name: "img2"}

// observed is site-a's (primary) or site-b's view of img2 at a recorded moment.
func observed(t *testing.T, moment string, primary bool) rpo.Observed {
	o := rpo.Observed{Site: "site-b", Image: img2}
	prefix := "nonprimary-"
	if primary {
		o.Site, prefix = "site-a", "primary-peer-"
	}
	recording(t, prefix+moment+".status.json", &o.Status)
	snaps := prefix + moment + ".snaps.json"
	if moment == "killed" && primary {
		snaps = "primary-peer-replaying.snaps.json"
	}
	recording(t, snaps, &o.Snaps)
	recording(t, "schedule-ls.json", &o.Schedules)
	recording(t, "schedule-status.json", &o.Next)
	o.Info.Mirroring = &struct {
		Mode     string `json:"mode"`
		State    string `json:"state"`
		GlobalID string `json:"global_id"`
		Primary  bool   `json:"primary"`
	}{Mode: "snapshot", State: "enabled", Primary: primary}
	return o
}

// lastCopy is the copy time the recordings hold (09:16:00 UTC).
var lastCopy = time.Unix(1796462160, 0)

func TestAssessByAge(t *testing.T) {
	const promised = 2 * time.Minute // img2's schedule: every 2m
	cases := []struct {
		after time.Duration
		want  rpo.Level
	}{
		{30 * time.Second, rpo.OK},
		{2 * promised, rpo.OK}, // at 2x: not yet late
		{2*promised + time.Second, rpo.Warning},
		{3 * promised, rpo.Warning},
		{3*promised + time.Second, rpo.Critical},
	}
	for _, moment := range []string{"replaying", "killed"} {
		for _, primary := range []bool{true, false} {
			for _, c := range cases {
				got := rpo.Assess(observed(t, moment, primary), promised, lastCopy.Add(c.after))
				if got.Level != c.want || got.LastCopy == nil || !got.LastCopy.Equal(lastCopy) || got.Age.Duration() != c.after {
					t.Errorf("%s, primary %v, %s after the copy: got %s (%s) age %v, want %s", moment, primary, c.after, got.Level, got.Reason, got.Age.Duration(), c.want)
				}
				if got.Level.Fails() != (c.want == rpo.Critical) {
					t.Errorf("%s fails: %v", got.Level, got.Level.Fails())
				}
			}
		}
	}
}

// A stopped rbd-mirror leaves no replay details: the age comes from the
// snapshots, and it keeps growing, so the check fails at 3x.
func TestAssessStoppedMirrorGoesCritical(t *testing.T) {
	for _, primary := range []bool{true, false} {
		o := observed(t, "stopped", primary)
		got := rpo.Assess(o, 2*time.Minute, time.Date(2026, 12, 5, 9, 20, 30, 0, time.UTC))
		if got.Level != rpo.Critical || got.LastCopyFrom != "snapshots" {
			t.Errorf("primary %v: got %s from %q (%s), want critical from the snapshots", primary, got.Level, got.LastCopyFrom, got.Reason)
		}
	}
}

func TestAssessBrokenAndUnprotected(t *testing.T) {
	now := lastCopy.Add(time.Minute)
	cases := []struct {
		name   string
		change func(*rpo.Observed)
		want   rpo.Level
		reason string
	}{
		{"not mirrored", func(o *rpo.Observed) { o.Info.Mirroring.State = "disabled" }, rpo.Broken, "mirroring is not enabled"},
		{"read failed", func(o *rpo.Observed) { o.Err = errors.New("timed out") }, rpo.Broken, "reading it: timed out"},
		{"being recreated", func(o *rpo.Observed) { o.Err = &rbd.CmdError{ExitCode: 2} }, rpo.Unprotected, "missing here"},
		{"both primary", func(o *rpo.Observed) {
			o.Status.PeerSites[0].State, o.Status.PeerSites[0].Description = "up+stopped", "local image is primary"
		}, rpo.Broken, "both sites claim primary"},
		{"peer in error", func(o *rpo.Observed) {
			o.Status.PeerSites[0].State, o.Status.PeerSites[0].Description = "up+error", "failed to refresh"
		}, rpo.Broken, "in error"},
		{"no peer", func(o *rpo.Observed) { o.Status.PeerSites = nil }, rpo.Broken, "no peer site reports it"},
		{"no schedule", func(o *rpo.Observed) { o.Schedules = nil }, rpo.Unscheduled, "rbd mirror snapshot schedule add --pool replicapool 2m"},
		{"schedule too slow", func(o *rpo.Observed) { o.Schedules[3].Items[0].Interval = "10m" }, rpo.Unscheduled, "every 10m, image replicapool/img2) is longer than the promised 2m"},
		{"never copied", func(o *rpo.Observed) {
			o.Status.PeerSites[0].Description = "starting replay"
			o.Snaps = o.Snaps[1:]
		}, rpo.Unprotected, "no complete copy yet"},
	}
	for _, c := range cases {
		o := observed(t, "replaying", true)
		c.change(&o)
		got := rpo.Assess(o, 2*time.Minute, now)
		if got.Level != c.want || !strings.Contains(got.Reason, c.reason) || !got.Level.Fails() {
			t.Errorf("%s: got %s %q, want %s containing %q", c.name, got.Level, got.Reason, c.want, c.reason)
		}
	}
	// A non-primary copy in split-brain.
	o := observed(t, "replaying", false)
	o.Status.State, o.Status.Description = "up+error", "split-brain"
	if got := rpo.Assess(o, 2*time.Minute, now); got.Level != rpo.Broken || !strings.Contains(got.Reason, "split-brain") {
		t.Errorf("split-brain: got %s %q", got.Level, got.Reason)
	}
	// A non-primary needs no schedule of its own here: only its copy counts.
	o = observed(t, "replaying", false)
	o.Schedules = nil
	if got := rpo.Assess(o, 2*time.Minute, now); got.Level != rpo.OK {
		t.Errorf("non-primary without a schedule: got %s %q", got.Level, got.Reason)
	}
}

func TestOutputs(t *testing.T) {
	now := lastCopy.Add(5 * time.Minute)
	images := []rpo.Image{
		rpo.Assess(observed(t, "replaying", true), 2*time.Minute, now),
		rpo.Assess(observed(t, "replaying", false), 2*time.Minute, now.Add(time.Minute)),
	}
	images[1].Schedule = 0
	neverCopied := observed(t, "replaying", true)
	neverCopied.Image = rbd.Image{Pool: "replicapool", Name: "img9"}
	neverCopied.Status.PeerSites[0].Description = "starting replay"
	neverCopied.Snaps = neverCopied.Snaps[1:]
	images = append(images, rpo.Assess(neverCopied, 2*time.Minute, now))
	for i := range images {
		images[i].App, images[i].Namespace = "wordpress", "wordpress"
	}

	var prom bytes.Buffer
	if err := rpo.WritePrometheus(&prom, images); err != nil {
		t.Fatal(err)
	}
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(&prom)
	if err != nil {
		t.Fatalf("not the text exposition format: %v\n%s", err, prom.String())
	}
	value := func(name, image string, extra ...string) (float64, bool) {
		for _, m := range families[name].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			// site-a's rows: img2 primary there, and img9.
			if labels["image"] == image && labels["site"] == "site-a" && labels["app"] == "wordpress" && (len(extra) == 0 || labels[extra[0]] == extra[1]) {
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	checks := []struct {
		name, image string
		extra       []string
		want        float64
	}{
		{"rbd_dr_last_sync_timestamp_seconds", "replicapool/img2", nil, float64(lastCopy.Unix())},
		{"rbd_dr_data_age_seconds", "replicapool/img2", nil, 300},
		{"rbd_dr_policy_schedule_interval_seconds", "replicapool/img2", nil, 120},
		{"rbd_dr_schedule_interval_seconds", "replicapool/img2", nil, 120},
		{"rbd_dr_rpo_warning_threshold_seconds", "replicapool/img2", nil, 240},
		{"rbd_dr_rpo_critical_threshold_seconds", "replicapool/img2", nil, 360},
		{"rbd_dr_image_primary", "replicapool/img2", nil, 1},
		{"rbd_dr_workload_protection_status", "replicapool/img2", nil, 1},
		{"rbd_dr_rpo_level", "replicapool/img2", []string{"level", "warning"}, 1},
		{"rbd_dr_rpo_level", "replicapool/img2", []string{"level", "ok"}, 0},
		{"rbd_dr_workload_protection_status", "replicapool/img9", nil, 0},
		{"rbd_dr_rpo_level", "replicapool/img9", []string{"level", "unprotected"}, 1},
	}
	for _, c := range checks {
		if got, ok := value(c.name, c.image, c.extra...); !ok || got != c.want {
			t.Errorf("%s{image=%s %v} = %v (%v), want %v", c.name, c.image, c.extra, got, ok, c.want)
		}
	}
	if _, ok := value("rbd_dr_last_sync_timestamp_seconds", "replicapool/img9"); ok {
		t.Error("an image never copied has a last sync time")
	}

	var js bytes.Buffer
	if err := rpo.WriteJSON(&js, images); err != nil {
		t.Fatal(err)
	}
	var doc struct{ Images []rpo.Image }
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil || len(doc.Images) != 3 || doc.Images[0].Level != rpo.Warning || doc.Images[0].Age != 300 {
		t.Errorf("JSON: %v %+v", err, doc)
	}

	var table bytes.Buffer
	if err := rpo.WriteTable(&table, images, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "warning") || !strings.Contains(lines[1], "every 2m") || !strings.Contains(lines[3], "never") {
		t.Errorf("table:\n%s", table.String())
	}
}
