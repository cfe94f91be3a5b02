package failover_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

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
