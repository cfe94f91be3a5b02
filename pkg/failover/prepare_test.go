package failover_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

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
