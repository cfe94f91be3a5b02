package failover_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// everyPool is the lab's pool-level schedule at interval.
func poolSchedule(interval string) []rbd.Schedule {
	return []rbd.Schedule{{Pool: "replicapool", Namespace: "-", Image: "-", Items: []rbd.ScheduleItem{{Interval: interval}}}}
}

// The schedule rule: prepare and promote refuse, before changing anything,
// an image that no schedule covers at least as often as promised.
func TestScheduleRequiredBeforePromote(t *testing.T) {
	denied := &rbd.CmdError{Args: []string{"mirror", "snapshot", "schedule", "ls"}, ExitCode: 13, Stderr: "rbd: rbd mirror snapshot schedule list failed: (13) Permission denied: access denied: does your client key have mgr caps?"}
	refusals := []struct {
		name  string
		setup func(*fake)
		want  string
	}{
		{"no schedule", func(f *fake) {}, "no mirror snapshot schedule covers replicapool/img1 on this site"},
		{"only another pool's", func(f *fake) {
			f.schedules = []rbd.Schedule{{Pool: "other", Namespace: "-", Image: "-", Items: []rbd.ScheduleItem{{Interval: "1m"}}}}
		}, "no mirror snapshot schedule covers"},
		{"longer than promised", func(f *fake) { f.schedules = poolSchedule("10m") }, "(every 10m, pool replicapool) is longer than the promised recovery point (5m)"},
		{"an image's own schedule overrides the pool's", func(f *fake) {
			f.schedules = append(poolSchedule("1m"), rbd.Schedule{Pool: "replicapool", Image: "img1", Items: []rbd.ScheduleItem{{Interval: "1h"}}})
		}, "(every 1h, image replicapool/img1)"},
		{"no mgr cap", func(f *fake) { f.schedulesErr = denied }, "give it the cap mgr 'profile rbd pool=replicapool'"},
	}
	for _, c := range refusals {
		t.Run("promote: "+c.name, func(t *testing.T) {
			f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}}
			c.setup(f)
			o, _ := opts()
			o.RPO = 5 * time.Minute
			res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
			if res.Err == nil || !strings.Contains(res.Err.Error(), c.want) || f.count("promote") != 0 || f.primary {
				t.Errorf("got %v (want %q), calls %v", res.Err, c.want, f.calls)
			}
			if c.name == "no schedule" && !strings.Contains(res.Err.Error(), "rbd mirror snapshot schedule add --pool replicapool 5m") {
				t.Errorf("the error does not say the fix: %v", res.Err)
			}
		})
		t.Run("prepare: "+c.name, func(t *testing.T) {
			f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b")}}
			c.setup(f)
			o, _ := opts()
			o.RPO = 5 * time.Minute
			res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, o))
			if res.Err == nil || !strings.Contains(res.Err.Error(), c.want) || f.count("resync") != 0 || f.count("status") != 0 {
				t.Errorf("got %v (want %q), calls %v", res.Err, c.want, f.calls)
			}
		})
	}
}

func TestScheduleCoveredSaysWhenTheFirstSnapshotIsDue(t *testing.T) {
	f := &fake{primary: true, schedules: poolSchedule("5m"), statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
	o, _ := opts()
	o.RPO = 5 * time.Minute
	// The fake clock starts at 09:02:30: the mgr's rescan (a minute) then
	// the next 5m boundary.
	images := []rbd.Image{img, {Pool: "replicapool", Name: "img2"}, {Pool: "replicapool", Name: "img3"}}
	report := failover.Promote(context.Background(), f, nil, images, o)
	if err := report.Err(); err != nil {
		t.Fatal(err)
	}
	for _, res := range report {
		// already primary, the peer replaying: the schedule is all there is to say
		if res.Note != "scheduled every 5m (pool replicapool): first snapshot due by 09:05:00" {
			t.Errorf("%s: note %q", res.Target, res.Note)
		}
	}
	if n := f.count("schedules"); n != 1 {
		t.Errorf("the schedules were read %d times for 3 images, want once per step", n)
	}
}

func TestScheduleNotCheckedWithoutRPO(t *testing.T) {
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
	o, _ := opts()
	if res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o)); res.Err != nil || f.count("schedules") != 0 {
		t.Errorf("%+v, calls %v", res, f.calls)
	}
}
